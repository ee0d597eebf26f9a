"""NeRF volume integration along rays (alpha compositing)."""

import torch
import torch.nn.functional as F

CLAMP_MODES = {'relu': F.relu, 'softplus': F.softplus}


def fancy_integration(rgb_sigma, z_vals, device=None, noise_std=0.5, last_back=False, white_back=False,
                      clamp_mode=None, fill_mode=None):
    """Composites samples front to back.

    rgb_sigma [B, R, S, 4] (rgb, raw sigma), z_vals [B, R, S, 1], sorted along S.
    Returns rgb [B, R, 3], depth [B, R, 1] and weights [B, R, S, 1].

    last_back: the ray's leftover transmittance is given to its last sample.
    white_back: the leftover transmittance shows a white background.
    """
    if clamp_mode not in CLAMP_MODES:
        raise ValueError(f"clamp_mode must be one of {sorted(CLAMP_MODES)}, got {clamp_mode!r}")
    rgbs, sigmas = rgb_sigma[..., :3], rgb_sigma[..., 3:]

    deltas = z_vals[:, :, 1:] - z_vals[:, :, :-1]
    deltas = torch.cat([deltas, torch.full_like(deltas[:, :, :1], 1e10)], -2)
    if noise_std > 0:
        sigmas = sigmas + torch.randn_like(sigmas) * noise_std

    alphas = 1 - torch.exp(-deltas * CLAMP_MODES[clamp_mode](sigmas))
    # Transmittance before each sample; the 1e-10 keeps cumprod away from exact zeros.
    transmittance = torch.cumprod(torch.cat([torch.ones_like(alphas[:, :, :1]), 1 - alphas + 1e-10], -2), -2)
    weights = alphas * transmittance[:, :, :-1]
    weights_sum = weights.sum(2)

    if last_back:
        weights = torch.cat([weights[:, :, :-1], weights[:, :, -1:] + (1 - weights_sum).unsqueeze(2)], -2)

    rgb = torch.sum(weights * rgbs, -2)
    depth = torch.sum(weights * z_vals, -2)
    if white_back:
        rgb = rgb + 1 - weights_sum

    if fill_mode == 'debug':
        rgb = torch.where((weights_sum < 0.9), torch.tensor([1.0, 0, 0], device=rgb.device), rgb)
    elif fill_mode == 'weight':
        rgb = weights_sum.expand_as(rgb)
    return rgb, depth, weights
