"""ImplicitGenerator3d: a FiLM-conditioned SIREN rendered by volume rendering.

Cameras are inputs: render() draws the images of given cameras (cam2world
matrices and a field of view) through the one render path, ray_sampler.py ->
renderer.py -> ray_marcher.py, with the settings it is given: a
settings.Rendering (img_size, ray_start, ray_end, num_steps, hierarchical_sample,
clamp_mode, nerf_noise, white_back, last_back, lock_view_dependence, perturb,
fast_path, fill_mode). forward() and staged_forward() keep the original's names
and return values: they draw the poses from a settings.CameraDistribution (fov,
h_mean, v_mean, h_stddev, v_stddev, sample_dist) and render them. They also take
the original's form, the curriculum's keys as keyword arguments; those are
checked against curriculums.KEYS (an unknown one is a TypeError), missing ones
take the table's defaults, and only the renderer's and the camera's are read.
`perturb` (default True) turns the stratified jitter along rays on or off;
`fast_path` overrides the generator's `fast_path` attribute (None: keep it).

evaluate_siren is the one way into the SIREN, for the renderer and for meshing.
Fast path (on by default): the SIREN is evaluated by siren/fast_path/, which
computes the same function with less work (FiLM folded into the weights, the
colour layer's direction term once per ray, chunked fused CPU kernels). Turn it
off with `ImplicitGenerator3d(..., fast_path=False)`, `generator.fast_path =
False` or the curriculum key `fast_path: False` to get the plain eager SIREN
(forward_with_frequencies_phase_shifts), the reference for equality tests.
Outputs agree to ~1e-6, gradients to relative ~1e-5. The fast path takes
whole rays per call, at most max_batch_size points per image, and is not twice
differentiable.
"""

import functools

import torch
import torch.nn as nn

from settings import render_settings
from siren.fast_path import film_siren_forward

from . import renderer
from .camera_utils import Cameras, sample_camera_angles
from .ray_sampler import rays_from_cameras, sample_depths

AVG_FREQUENCY_SAMPLES = 10000
STAGED_MAX_BATCH_SIZE = 50000  # points per image per SIREN call in staged_forward, by default


def settings_of_call(rendering, camera, curriculum_keys):
    """(rendering, camera) of an entry point's call: those given, or built from curriculum keys."""
    if rendering is not None and camera is not None and not curriculum_keys:
        return rendering, camera
    if rendering is not None or camera is not None:
        raise TypeError("pass rendering and camera, or curriculum keys as keyword arguments, not both")
    return render_settings(curriculum_keys)


class ImplicitGenerator3d(nn.Module):
    def __init__(self, siren, z_dim, fast_path=True, density_scale=1.0, **siren_kwargs):
        super().__init__()
        self.z_dim = z_dim
        self.fast_path = fast_path
        self.density_scale = density_scale  # curriculum key; 1 in the original
        self.siren = siren(output_dim=4, z_dim=z_dim, input_dim=3, device=None, **siren_kwargs)
        self.epoch = 0
        self.step = 0
        self._avg_cache = None

    @property
    def device(self):
        return next(self.parameters()).device

    def set_device(self, device):
        self.to(device)
        self.generate_avg_frequencies()

    # --- latent space --------------------------------------------------------------

    def generate_avg_frequencies(self):
        """Mean frequencies and phase shifts over 10000 z ~ N(0, I), [1, F] each.

        The z are drawn from a fixed seed, so truncated renders are reproducible;
        the result is cached until the mapping network's weights change.
        """
        params = list(self.siren.mapping_network.parameters())
        key = tuple((p.data_ptr(), p._version) for p in params)
        if self._avg_cache is None or self._avg_cache[0] != key:
            z = torch.randn((AVG_FREQUENCY_SAMPLES, self.z_dim), generator=torch.Generator().manual_seed(0))
            with torch.no_grad():
                frequencies, phase_shifts = self.siren.mapping_network(z.to(self.device))
            self._avg_cache = (key, frequencies.mean(0, keepdim=True), phase_shifts.mean(0, keepdim=True))
        self.avg_frequencies, self.avg_phase_shifts = self._avg_cache[1:]
        return self.avg_frequencies, self.avg_phase_shifts

    def truncated_frequencies(self, z, psi=1.0):
        """Mapping-network outputs for z, pulled towards the average by psi (psi=1: none)."""
        frequencies, phase_shifts = self.siren.mapping_network(z)
        if psi != 1:
            avg_frequencies, avg_phase_shifts = self.generate_avg_frequencies()
            frequencies = avg_frequencies + psi * (frequencies - avg_frequencies)
            phase_shifts = avg_phase_shifts + psi * (phase_shifts - avg_phase_shifts)
        return frequencies, phase_shifts

    # --- public entry points (names and return values of the original) -------------
    # Each takes the settings as rendering (settings.Rendering) and camera (settings.CameraDistribution).
    # The original's form, curriculum keys as keyword arguments (`generator(z, **metadata)`), still works:
    # settings.render_settings checks them and builds the two (it reads the renderer's and the camera's keys).

    def forward(self, z, rendering=None, camera=None, patch_grid=None, **curriculum_keys):
        """Training render at poses drawn from camera: pixels [B, 3, H, W] in [-1, 1], (pitch, yaw) [B, 2].

        patch_grid [B, K, K, 2]: render only these points of each image (patch training), H = W = K.
        """
        rendering, camera = settings_of_call(rendering, camera, curriculum_keys)
        frequencies, phase_shifts = self.siren.mapping_network(z)
        pixels, _, pitch_yaw = self.render_sampled_poses(frequencies, phase_shifts, rendering, camera, patch_grid)
        return pixels, pitch_yaw

    # Kept for the original's users: its inverse_render.py fits a latent through this method.
    def forward_with_frequencies(self, frequencies, phase_shifts, rendering=None, camera=None, **curriculum_keys):
        """As forward, from given frequencies and phase shifts [B, F]."""
        rendering, camera = settings_of_call(rendering, camera, curriculum_keys)
        pixels, _, pitch_yaw = self.render_sampled_poses(frequencies, phase_shifts, rendering, camera)
        return pixels, pitch_yaw

    def staged_forward(self, z, psi=1, max_batch_size=STAGED_MAX_BATCH_SIZE, rendering=None, camera=None,
                       **curriculum_keys):
        """Inference render at poses drawn from camera, in chunks of max_batch_size points:
        (pixels [B, 3, H, W], depth [B, H, W]) on the CPU."""
        rendering, camera = settings_of_call(rendering, camera, curriculum_keys)
        with torch.no_grad():
            frequencies, phase_shifts = self.truncated_frequencies(z, psi)
        return self.staged_forward_with_frequencies(frequencies, phase_shifts, max_batch_size=max_batch_size,
                                                    rendering=rendering, camera=camera)

    def staged_forward_with_frequencies(self, truncated_frequencies, truncated_phase_shifts,
                                        max_batch_size=STAGED_MAX_BATCH_SIZE, rendering=None, camera=None, psi=None,
                                        **curriculum_keys):
        """As staged_forward, from truncated frequencies and phase shifts. psi: taken, as the original took
        it, and not read (the latent is truncated already)."""
        rendering, camera = settings_of_call(rendering, camera, curriculum_keys)
        with torch.no_grad():
            pixels, depth, _ = self.render_sampled_poses(truncated_frequencies, truncated_phase_shifts, rendering,
                                                         camera, max_batch_size=max_batch_size)
        return pixels.cpu(), depth.cpu()

    # --- rendering --------------------------------------------------------------------

    def render(self, frequencies, phase_shifts, cameras, rendering, patch_grid=None, z_vals=None,
               max_batch_size=None):
        """Images of B given cameras: pixels [B, 3, H, W] in [-1, 1], depth [B, H, W]; H = W = rendering.img_size.

        frequencies, phase_shifts [B, F]: each camera's latent. cameras: camera_utils.Cameras, B of them,
        on this generator's device. Differentiable in the cameras' angles, the latent and the weights.
        rendering: settings.Rendering. patch_grid [B, K, K, 2]: only the pixels of the img_size image at these
        points (ray_sampler.rays_from_cameras), H = W = K. z_vals, max_batch_size: as render_rays.
        """
        ray_origins, ray_directions = rays_from_cameras(cameras.cam2world(), cameras.fov, rendering.img_size,
                                                        patch_grid)
        rgb, depth = self.render_rays(frequencies, phase_shifts, ray_origins, ray_directions, rendering, z_vals,
                                      max_batch_size)
        return renderer.to_images(rgb, depth, rendering.img_size if patch_grid is None else patch_grid.shape[1])

    def render_rays(self, frequencies, phase_shifts, ray_origins, ray_directions, rendering, z_vals=None,
                    max_batch_size=None):
        """Colours [B, R, 3] in [0, 1] and depths [B, R, 1] of rays with origins and unit directions [B, R, 3].

        num_steps samples per ray from ray_start to ray_end, jittered if perturb, unless z_vals
        [B, R, num_steps, 1] are given (render_sampled_poses draws them before the poses).
        max_batch_size: at most this many points per image per SIREN call (None: all at once).
        """
        if z_vals is None:
            z_vals = sample_depths(*ray_origins.shape[:2], rendering.num_steps, rendering.ray_start,
                                   rendering.ray_end, rendering.perturb, ray_origins.device)
        evaluate = functools.partial(self.evaluate_siren, max_batch_size=max_batch_size, fast_path=rendering.fast_path)
        return renderer.render_rays(evaluate, ray_origins, ray_directions, z_vals, frequencies,
                                    phase_shifts, rendering.ray_end, hierarchical_sample=rendering.hierarchical_sample,
                                    lock_view_dependence=rendering.lock_view_dependence,
                                    clamp_mode=rendering.clamp_mode, nerf_noise=rendering.nerf_noise,
                                    white_back=rendering.white_back, last_back=rendering.last_back,
                                    fill_mode=rendering.fill_mode)

    def render_sampled_poses(self, frequencies, phase_shifts, rendering, camera, patch_grid=None,
                             max_batch_size=None):
        """render() at B poses drawn from camera (settings.CameraDistribution). Returns pixels, depth and
        (pitch, yaw) [B, 2]. patch_grid [B, K, K, 2]: render only these points of each image (see render)."""
        batch, device = frequencies.shape[0], frequencies.device
        n_rays = rendering.img_size ** 2 if patch_grid is None else patch_grid.shape[1] * patch_grid.shape[2]
        # The original drew the depth jitter before the poses; this order keeps its random numbers.
        z_vals = sample_depths(batch, n_rays, rendering.num_steps, rendering.ray_start, rendering.ray_end,
                               rendering.perturb, device)
        pitch, yaw = sample_camera_angles(batch, camera.h_stddev, camera.v_stddev, camera.h_mean, camera.v_mean,
                                          camera.sample_dist, device)
        pixels, depth = self.render(frequencies, phase_shifts, Cameras(yaw=yaw, pitch=pitch, fov=camera.fov),
                                    rendering, patch_grid, z_vals, max_batch_size)
        return pixels, depth, torch.cat([pitch, yaw], -1)

    def evaluate_siren(self, points, view_directions, frequencies, phase_shifts, max_batch_size=None,
                       fast_path=None):
        """SIREN at points [B, R, S, 3] seen along view_directions [B, R, 3] -> rgb + raw sigma [B, R, S, 4].

        The one way into the SIREN (renderer and meshing). frequencies, phase_shifts [B, F].
        fast_path: siren/fast_path/ (None: self.fast_path); else the eager SIREN.
        With max_batch_size, each image is evaluated in chunks of at most that many points.
        """
        out = self._siren_outputs(points, view_directions, frequencies, phase_shifts, max_batch_size, fast_path)
        if self.density_scale != 1:  # in place: both paths end in a fresh torch.cat, which autograd allows
            out[..., 3:] *= self.density_scale
        return out

    def _siren_outputs(self, points, view_directions, frequencies, phase_shifts, max_batch_size, fast_path):
        batch, rays, steps, _ = points.shape
        if self.fast_path if fast_path is None else fast_path:
            # Whole rays per call, at most max_batch_size points per image, so big renders fit in memory.
            rays_per_call = rays if max_batch_size is None else max(1, max_batch_size // steps)
            return torch.cat([film_siren_forward(self.siren, points[:, i:i + rays_per_call],
                                                 view_directions[:, i:i + rays_per_call], frequencies, phase_shifts)
                              for i in range(0, rays, rays_per_call)], 1)
        flat_points = points.reshape(batch, rays * steps, 3)
        flat_dirs = view_directions.unsqueeze(2).expand(-1, -1, steps, -1).reshape(batch, rays * steps, 3)
        siren = self.siren.forward_with_frequencies_phase_shifts
        if max_batch_size is None:
            out = siren(flat_points, frequencies, phase_shifts, ray_directions=flat_dirs)
        else:
            out = torch.cat([
                torch.cat([siren(flat_points[b:b + 1, i:i + max_batch_size], frequencies[b:b + 1],
                                 phase_shifts[b:b + 1], ray_directions=flat_dirs[b:b + 1, i:i + max_batch_size])
                           for i in range(0, rays * steps, max_batch_size)], 1)
                for b in range(batch)], 0)
        return out.reshape(batch, rays, steps, 4)
