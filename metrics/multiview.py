"""Multi-view consistency: does what a sample shows from one camera agree with another view's depth?

Each sample is rendered from two cameras A and B. Every pixel of A is lifted to 3D with
A's depth, projected into B, and compared with B's colour there. Only pixels on the
head (their 3D point within HEAD_RADIUS of the origin) and visible from B (B's depth
at the projection agrees with the point's distance) count. A 3D-consistent sample
scores near the true heads' own value, which is not zero: resampling and the
antialiased silhouettes cost a little.
"""

import math

import torch
import torch.nn.functional as F

from generators.camera_utils import Cameras
from generators.ray_sampler import camera_ray_directions

HEAD_RADIUS = 0.1          # world units; the synthetic heads fit within 0.095
VISIBILITY_TOLERANCE = 0.01  # world units between B's depth and the point's distance from B


def camera_pair(camera, separation=None):
    """Cameras A and B (of one each) at the mean pitch of a pose distribution (settings.CameraDistribution),
    yaw mean -+ separation / 2 (default: one h_stddev apart)."""
    separation = camera.h_stddev if separation is None else separation
    yaw, pitch, fov = camera.h_mean, camera.v_mean, camera.fov
    return (Cameras(yaw=yaw - separation / 2, pitch=pitch, fov=fov),
            Cameras(yaw=yaw + separation / 2, pitch=pitch, fov=fov))


def _rotation_and_origin(camera):
    matrix = camera.cam2world()[0]
    return matrix[:3, :3], matrix[:3, 3]


def lift(depth, camera):
    """World points [S*S, 3] at distance depth [S, S] along the camera's pixel rays (inf: far away)."""
    size = depth.shape[-1]
    rotation, origin = _rotation_and_origin(camera)
    directions = camera_ray_directions(float(camera.fov), (size, size)) @ rotation.T
    return origin + torch.nan_to_num(depth.reshape(-1, 1).float(), posinf=1e3) * directions


def warp(image_b, depth_b, depth_a, camera_a, camera_b):
    """B's colours at A's pixels, and which of A's pixels see a head point that B sees too.

    image_b [3, S, S]; depth_a, depth_b [S, S] (inf or large on the background).
    Returns (warped [3, S, S], mask [S, S] bool).
    """
    size = depth_a.shape[-1]
    points = lift(depth_a, camera_a)
    on_head = points.norm(dim=-1) < HEAD_RADIUS
    rotation_b, origin_b = _rotation_and_origin(camera_b)

    in_b = (points - origin_b) @ rotation_b                       # camera B coordinates
    scale = 1 / math.tan(math.radians(float(camera_b.fov)) / 2)
    forward = (-in_b[:, 2]).clamp_min(1e-6)
    # Pixel centres span [-1, 1] left to right and +1..-1 top to bottom (camera_ray_directions).
    grid = torch.stack([in_b[:, 0] / forward * scale, -in_b[:, 1] / forward * scale], -1)
    inside = (grid.abs() <= 1).all(-1)
    grid = grid.reshape(1, size, size, 2)
    warped = F.grid_sample(image_b[None].float(), grid, mode='bilinear', align_corners=True)[0]
    depth_b = torch.nan_to_num(depth_b.float(), posinf=1e3)
    seen_depth = F.grid_sample(depth_b[None, None], grid, mode='bilinear', align_corners=True).reshape(-1)
    visible = (seen_depth - (points - origin_b).norm(dim=-1)).abs() < VISIBILITY_TOLERANCE
    return warped, (on_head & inside & visible).reshape(size, size)


def photometric_error(heads, indices, camera_a, camera_b, img_size):
    """(mean |colour difference| in [0, 1] units over masked pixels, fraction of A's head pixels kept)."""
    pixels_a, depth_a = heads.render(indices, Cameras.cat([camera_a] * len(indices)), img_size)
    pixels_b, depth_b = heads.render(indices, Cameras.cat([camera_b] * len(indices)), img_size)
    total, count, head_pixels = 0.0, 0, 0
    for i in range(len(indices)):
        warped, mask = warp(pixels_b[i], depth_b[i], depth_a[i], camera_a, camera_b)
        difference = (pixels_a[i].float() - warped).abs().mean(0) / 2  # [-1, 1] -> [0, 1] units
        total += float(difference[mask].sum())
        count += int(mask.sum())
        head_pixels += int((lift(depth_a[i], camera_a).norm(dim=-1) < HEAD_RADIUS).sum())
    error = total / count if count else math.nan
    return error, count / head_pixels if head_pixels else 0.0

