"""Camera model of pi-GAN: cameras on a sphere around the origin, looking at it.

Conventions (OpenGL-like): y is up. A camera at yaw `theta` and pitch `phi`
sits at r * (sin(phi) cos(theta), cos(phi), sin(phi) sin(theta)); pitch is the
angle from +y, so (theta, phi) = (pi/2, pi/2) puts the camera on +z.

Cameras is the one camera type (its docstring fixes the angles' names, order and
shapes); the renderer takes its cam2world() [B, 4, 4] and fov [B].
look_at_origin builds the matrices from pitch and yaw tensors [B, 1]
(differentiably), sample_camera_angles draws training's poses.
"""

import math
import random

import torch

CAMERA_DISTRIBUTIONS = ('gaussian', 'normal', 'uniform', 'hybrid', 'truncated_gaussian',
                        'spherical_uniform', 'fixed', None)
# The curriculum keys of the camera: field of view and the pose distribution of training.
CAMERA_KEYS = ('fov', 'h_mean', 'v_mean', 'h_stddev', 'v_stddev', 'sample_dist')
PITCH_MARGIN = 1e-5  # pitch stays this far from the poles, where "up" is undefined


class Cameras:
    """B cameras on the unit sphere, looking at the origin: the one camera type of every render.

    Angles are radians, in pi-GAN's convention: yaw (theta) is the horizontal angle around the
    y axis, from +x towards +z; pitch (phi) is the polar angle from +y (up). theta = phi = pi/2
    is the frontal camera, on +z. Constructed by keyword only, Cameras(yaw=..., pitch=..., fov=...),
    so the order cannot be swapped: look_at_origin and sample_camera_angles, and the pose labels
    of training, keep the original's (pitch, yaw) order.

    yaw, pitch: [B] tensors. A number or a list becomes float32, as the renderer computes;
    a tensor of any shape with B elements keeps its dtype, device and autograd graph (fitted
    poses stay differentiable). fov: full field of view in degrees, [B] float64. Any of the
    three given once (a number, or one element) is every camera's; one number each gives
    one camera, B = 1.
    cam2world() gives the renderer's matrices [B, 4, 4]. cameras[i] is a Cameras of one,
    cameras[list or slice] a sub-batch; iterating yields single cameras.
    """

    def __init__(self, *, yaw, pitch, fov):
        yaw = _angles(yaw)
        fov = torch.as_tensor(fov, dtype=torch.float64, device=yaw.device).reshape(-1)
        self.yaw, self.pitch, self.fov = torch.broadcast_tensors(yaw, _angles(pitch).to(yaw.device), fov)

    @staticmethod
    def cat(batches):
        """One Cameras of all the cameras of a sequence of Cameras, in order."""
        batches = list(batches)
        return Cameras(yaw=torch.cat([c.yaw for c in batches]), pitch=torch.cat([c.pitch for c in batches]),
                       fov=torch.cat([c.fov for c in batches]))

    def cam2world(self):
        """Camera-to-world matrices [B, 4, 4] (look_at_origin; differentiable in the angles)."""
        return look_at_origin(self.pitch[:, None], self.yaw[:, None])

    def turned(self, yaw=0.0, pitch=0.0):
        """These cameras turned by fixed offsets (radians), added in float64 as Python numbers would be."""
        return Cameras(yaw=(self.yaw.double() + yaw).to(self.yaw.dtype),
                       pitch=(self.pitch.double() + pitch).to(self.pitch.dtype), fov=self.fov)

    def to(self, device):
        return Cameras(yaw=self.yaw.to(device), pitch=self.pitch.to(device), fov=self.fov.to(device))

    def detach(self):
        return Cameras(yaw=self.yaw.detach(), pitch=self.pitch.detach(), fov=self.fov)

    def tolist(self):
        """[(yaw, pitch, fov)] as Python floats, one tuple a camera (for files, logs and dict keys)."""
        return list(zip(self.yaw.tolist(), self.pitch.tolist(), self.fov.tolist()))

    def __len__(self):
        return len(self.yaw)

    def __getitem__(self, index):
        if isinstance(index, int):
            index = [range(len(self))[index]]  # keeps the batch dimension; IndexError past the end
        return Cameras(yaw=self.yaw[index], pitch=self.pitch[index], fov=self.fov[index])

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self):
        return f'Cameras((yaw, pitch, fov): {self.tolist()})'


def _angles(values):
    """[B] angles of a tensor (as it is) or of numbers (float32)."""
    angles = values if torch.is_tensor(values) else torch.tensor(values, dtype=torch.float32)
    return angles.reshape(-1)


def clamp_pitch(pitch):
    return pitch.clamp(PITCH_MARGIN, math.pi - PITCH_MARGIN)


def normalize_vecs(vectors):
    """Unit vectors along the last dimension."""
    return vectors / torch.norm(vectors, dim=-1, keepdim=True)


def truncated_normal_(tensor, mean=0.0, std=1.0):
    """Fills `tensor` with N(mean, std) restricted to (-2 std, 2 std) by rejection.

    Unlike the original (4 draws, then keep an invalid one), redraws until every
    value is inside the limits.
    """
    values = tensor.new_empty(tensor.shape).normal_()
    invalid = values.abs() >= 2
    while invalid.any():
        values[invalid] = tensor.new_empty(int(invalid.sum())).normal_()
        invalid = values.abs() >= 2
    tensor.data.copy_(values)
    return tensor.mul_(std).add_(mean)


def sample_camera_angles(n, horizontal_stddev, vertical_stddev, horizontal_mean, vertical_mean,
                         mode, device='cpu'):
    """Draws (pitch, yaw), each [n, 1], from one of the pi-GAN pose distributions."""
    def uniform(spread):
        return (torch.rand((n, 1), device=device) - 0.5) * 2 * spread

    def gaussian(std):
        return torch.randn((n, 1), device=device) * std

    if mode == 'uniform':
        theta = uniform(horizontal_stddev) + horizontal_mean
        phi = uniform(vertical_stddev) + vertical_mean
    elif mode in ('normal', 'gaussian'):
        theta = gaussian(horizontal_stddev) + horizontal_mean
        phi = gaussian(vertical_stddev) + vertical_mean
    elif mode == 'hybrid':
        # Half the batches uniform over twice the spread, half gaussian.
        if random.random() < 0.5:
            theta = uniform(2 * horizontal_stddev) + horizontal_mean
            phi = uniform(2 * vertical_stddev) + vertical_mean
        else:
            theta = gaussian(horizontal_stddev) + horizontal_mean
            phi = gaussian(vertical_stddev) + vertical_mean
    elif mode == 'truncated_gaussian':
        theta = truncated_normal_(torch.zeros((n, 1), device=device)) * horizontal_stddev + horizontal_mean
        phi = truncated_normal_(torch.zeros((n, 1), device=device)) * vertical_stddev + vertical_mean
    elif mode == 'spherical_uniform':
        # Uniform over the sphere's area: cos(phi) uniform, within the given band.
        theta = uniform(horizontal_stddev) + horizontal_mean
        v = uniform(vertical_stddev / math.pi) + vertical_mean / math.pi
        phi = torch.arccos(1 - 2 * v.clamp(1e-5, 1 - 1e-5))
    elif mode in (None, 'fixed'):
        theta = torch.full((n, 1), float(horizontal_mean), device=device)
        phi = torch.full((n, 1), float(vertical_mean), device=device)
    else:
        raise ValueError(f"unknown sample_dist {mode!r}; choose one of {CAMERA_DISTRIBUTIONS}")
    return clamp_pitch(phi), theta


def camera_origins(pitch, yaw, radius=1.0):
    """Positions [n, 3] on the sphere for pitch, yaw [n, 1]."""
    return radius * torch.cat([torch.sin(pitch) * torch.cos(yaw),
                               torch.cos(pitch),
                               torch.sin(pitch) * torch.sin(yaw)], dim=-1)


def sample_camera_positions(device, n=1, r=1, horizontal_stddev=1, vertical_stddev=1,
                            horizontal_mean=math.pi * 0.5, vertical_mean=math.pi * 0.5, mode='normal'):
    """Returns camera origins [n, 3], pitch [n, 1] and yaw [n, 1]."""
    pitch, yaw = sample_camera_angles(n, horizontal_stddev, vertical_stddev, horizontal_mean,
                                      vertical_mean, mode, device)
    return camera_origins(pitch, yaw, r), pitch, yaw


def create_cam2world_matrix(forward_vector, origin, device=None):
    """[n, 4, 4] camera-to-world matrices; the camera looks down its -z axis along forward_vector."""
    forward = normalize_vecs(forward_vector)
    world_up = torch.tensor([0.0, 1.0, 0.0], dtype=forward.dtype, device=forward.device).expand_as(forward)
    left = normalize_vecs(torch.cross(world_up, forward, dim=-1))
    up = normalize_vecs(torch.cross(forward, left, dim=-1))

    cam2world = torch.eye(4, dtype=forward.dtype, device=forward.device).repeat(forward.shape[0], 1, 1)
    cam2world[:, :3, :3] = torch.stack((-left, up, -forward), dim=-1)
    cam2world[:, :3, 3] = origin
    return cam2world


def look_at_origin(pitch, yaw, radius=1.0):
    """cam2world [n, 4, 4] for cameras at pitch, yaw [n, 1] looking at the origin (differentiable)."""
    origin = camera_origins(clamp_pitch(pitch), yaw, radius)
    return create_cam2world_matrix(-origin, origin)
