"""ImplicitGenerator3d: a FiLM-conditioned SIREN rendered by volume rendering.

Every method takes the curriculum's keys as keyword arguments, as in the
original release (img_size, fov, ray_start, ray_end, num_steps, h_stddev,
v_stddev, h_mean, v_mean, sample_dist, hierarchical_sample, clamp_mode,
nerf_noise, white_back, last_back, lock_view_dependence, ...). New keys:
`perturb` (default True) turns the stratified jitter along rays on or off;
`fast_path` overrides the generator's `fast_path` attribute for one call.

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

import torch
import torch.nn as nn

from siren.fast_path import film_siren_forward

from .ray_marcher import fancy_integration
from .ray_sampler import importance_sample, sample_rays

AVG_FREQUENCY_SAMPLES = 10000


class ImplicitGenerator3d(nn.Module):
    def __init__(self, siren, z_dim, fast_path=True, **siren_kwargs):
        super().__init__()
        self.z_dim = z_dim
        self.fast_path = fast_path
        self.siren = siren(output_dim=4, z_dim=z_dim, input_dim=3, device=None, **siren_kwargs)
        self.epoch = 0
        self.step = 0
        self._avg_cache = None

    @property
    def device(self):
        return next(self.parameters()).device

    def set_device(self, device):
        self.to(device)
        self.siren.device = device
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

    def forward(self, z, **options):
        """Training render: pixels [B, 3, H, W] in [-1, 1] and (pitch, yaw) [B, 2]."""
        frequencies, phase_shifts = self.siren.mapping_network(z)
        pixels, _, pitch_yaw = self.render(frequencies, phase_shifts, **options)
        return pixels, pitch_yaw

    def forward_with_frequencies(self, frequencies, phase_shifts, **options):
        """As forward, from given frequencies and phase shifts (for inversion)."""
        pixels, _, pitch_yaw = self.render(frequencies, phase_shifts, **options)
        return pixels, pitch_yaw

    def staged_forward(self, z, psi=1, max_batch_size=50000, **options):
        """Inference render in chunks of max_batch_size points: (pixels, depth) on the CPU."""
        with torch.no_grad():
            frequencies, phase_shifts = self.truncated_frequencies(z, psi)
        return self.staged_forward_with_frequencies(frequencies, phase_shifts,
                                                    max_batch_size=max_batch_size, **options)

    def staged_forward_with_frequencies(self, truncated_frequencies, truncated_phase_shifts,
                                        max_batch_size=50000, **options):
        options.pop('psi', None)
        with torch.no_grad():
            pixels, depth, _ = self.render(truncated_frequencies, truncated_phase_shifts,
                                           max_batch_size=max_batch_size, **options)
        return pixels.cpu(), depth.cpu()

    # --- renderer -------------------------------------------------------------------

    def render(self, frequencies, phase_shifts, img_size, fov, ray_start, ray_end, num_steps,
               h_stddev=0, v_stddev=0, h_mean=torch.pi / 2, v_mean=torch.pi / 2, sample_dist=None,
               hierarchical_sample=False, lock_view_dependence=False, clamp_mode='relu', nerf_noise=0.0,
               white_back=False, last_back=False, perturb=True, max_batch_size=None, fill_mode=None,
               fast_path=None, **unused_curriculum_keys):
        """Renders [B, 3, H, W] pixels in [-1, 1], depth [B, H, W] and (pitch, yaw) [B, 2]."""
        batch_size = frequencies.shape[0]
        siren_options = dict(max_batch_size=max_batch_size, fast_path=fast_path)
        with torch.no_grad():
            rays = sample_rays(batch_size, num_steps, fov, img_size, ray_start, ray_end, h_stddev, v_stddev,
                               h_mean, v_mean, sample_dist, perturb=perturb, device=frequencies.device)
        view_directions = rays['ray_directions']
        if lock_view_dependence:
            view_directions = torch.zeros_like(view_directions)
            view_directions[..., -1] = -1

        z_vals = rays['z_vals']
        outputs = self.evaluate_siren(rays['points'], view_directions, frequencies, phase_shifts, **siren_options)
        if hierarchical_sample:
            with torch.no_grad():
                _, _, weights = fancy_integration(outputs, z_vals, clamp_mode=clamp_mode, noise_std=nerf_noise)
                fine_z_vals = importance_sample(z_vals, weights, num_steps)
                fine_points = (rays['ray_origins'].unsqueeze(2)
                               + rays['ray_directions'].unsqueeze(2) * fine_z_vals)
            fine_outputs = self.evaluate_siren(fine_points, view_directions, frequencies, phase_shifts,
                                               **siren_options)
            z_vals, order = torch.sort(torch.cat([fine_z_vals, z_vals], -2), dim=-2)
            outputs = torch.gather(torch.cat([fine_outputs, outputs], -2), -2, order.expand(-1, -1, -1, 4))

        rgb, depth, _ = fancy_integration(outputs, z_vals, white_back=white_back, last_back=last_back,
                                          clamp_mode=clamp_mode, noise_std=nerf_noise, fill_mode=fill_mode)
        pixels = rgb.reshape(batch_size, img_size, img_size, 3).permute(0, 3, 1, 2).contiguous() * 2 - 1
        depth = depth.reshape(batch_size, img_size, img_size)
        return pixels, depth, torch.cat([rays['pitch'], rays['yaw']], -1)

    def evaluate_siren(self, points, view_directions, frequencies, phase_shifts, max_batch_size=None,
                       fast_path=None):
        """SIREN at points [B, R, S, 3] seen along view_directions [B, R, 3] -> [B, R, S, 4].

        fast_path: siren/fast_path/ (None: self.fast_path); else the eager SIREN.
        With max_batch_size, each image is evaluated in chunks of at most that many points.
        """
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
