"""The renderer: the SIREN evaluated along rays, hierarchical sampling, volume integration.

Every render takes one path: cameras (cam2world, fov) -> ray_sampler.py (rays,
sample depths) -> render_rays here -> ray_marcher.py (integration); the
generator's render() and render_rays() are its entry points: they take a
settings.Rendering and pass its fields here as explicit arguments. Training,
the scripts, inversion and the viewer differ only in where the cameras come
from. Shapes: B cameras, R rays per camera, S samples per ray, F = 9 * hidden.
"""

import torch

from .ray_marcher import fancy_integration
from .ray_sampler import importance_sample, points_along_rays


def locked_view_directions(ray_directions):
    """The one direction every sample is seen along with lock_view_dependence: -z, [B, R, 3]."""
    directions = torch.zeros_like(ray_directions)
    directions[..., -1] = -1
    return directions


def render_rays(evaluate, ray_origins, ray_directions, z_vals, frequencies, phase_shifts, far,
                hierarchical_sample=False, lock_view_dependence=False, clamp_mode='relu', nerf_noise=0.0,
                white_back=False, last_back=False, fill_mode=None):
    """Colours [B, R, 3] in [0, 1] and depths [B, R, 1] of rays [B, R, 3] sampled at z_vals [B, R, S, 1].

    evaluate: the SIREN, (points [B, R, S, 3], view directions [B, R, 3], frequencies, phase_shifts [B, F])
    -> rgb + sigma [B, R, S, 4]; the generator binds how it is evaluated (chunks, fast path), which the
    renderer need not know.
    hierarchical_sample: S more samples drawn where the coarse pass found density (NeRF).
    far: the sampled range's end (ray_end, before jitter). white_back: the ray's leftover
    transmittance shows white, at depth far.
    Differentiable in the rays, the latent and the SIREN's weights.
    """
    view_directions = locked_view_directions(ray_directions) if lock_view_dependence else ray_directions
    outputs = evaluate(points_along_rays(ray_origins, ray_directions, z_vals), view_directions,
                       frequencies, phase_shifts)
    if hierarchical_sample:
        with torch.no_grad():
            _, _, weights = fancy_integration(outputs, z_vals, clamp_mode=clamp_mode, noise_std=nerf_noise)
            fine_z_vals = importance_sample(z_vals, weights, z_vals.shape[2])
        fine_outputs = evaluate(points_along_rays(ray_origins, ray_directions, fine_z_vals), view_directions,
                                frequencies, phase_shifts)
        z_vals, order = torch.sort(torch.cat([fine_z_vals, z_vals], -2), dim=-2)
        outputs = torch.gather(torch.cat([fine_outputs, outputs], -2), -2, order.expand(-1, -1, -1, 4))
    rgb, depth, weights = fancy_integration(outputs, z_vals, white_back=white_back, last_back=last_back,
                                            clamp_mode=clamp_mode, noise_std=nerf_noise, fill_mode=fill_mode)
    if white_back and not last_back:
        # The leftover transmittance shows the background: its depth is the far end, not 0 (the
        # camera), where the original left it. Training never reads depth.
        depth = depth + (1 - weights.sum(-2)) * far
    return rgb, depth


def to_images(rgb, depth, img_size):
    """Colours [B, R, 3] in [0, 1] and depths [B, R, 1] of row-major pixel rays -> pixels [B, 3, H, W] in
    [-1, 1] and depth [B, H, W]; H = W = img_size."""
    batch = rgb.shape[0]
    pixels = rgb.reshape(batch, img_size, img_size, 3).permute(0, 3, 1, 2).contiguous() * 2 - 1
    return pixels, depth.reshape(batch, img_size, img_size)
