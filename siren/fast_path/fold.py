"""FiLM folded into the SIREN's weights: what the fast kernels run, taken from the module itself.

For image b, each FiLM layer sin(f_b (W x + c) + p_b) is a plain sine layer
with weight f_b W and bias f_b c + p_b (FiLMLayer.folded). The colour layer
reads cat([direction, x]); its direction columns and its bias depend on the
ray only, so they fold into one term per ray, and the per-sample expanded
directions are never built.

Everything comes from the SIREN's own pieces (film(), FiLMLayer.folded,
density_head, colour_head), so the fast path follows any change to them.
"""

from typing import List, NamedTuple, Tuple

import torch


class FoldedSiren(NamedTuple):
    """One FiLM-SIREN with per-image weights; h = hidden width, R rays."""
    weights: List[torch.Tensor]   # [B, h, in] per trunk layer, then the colour layer's x columns [B, h, h]
    biases: List[torch.Tensor]    # [B, h] per trunk layer
    ray_term: torch.Tensor        # [B, R, h]: the colour layer's direction columns and bias, per ray
    heads: Tuple[torch.Tensor, ...]  # density head weight [1, h] and bias [1], colour head [3, h] and [3]


def fold_film(siren, frequencies, phase_shifts, ray_directions):
    """frequencies, phase_shifts [B, 9h] (mapping outputs), ray_directions [B, R, 3] -> FoldedSiren."""
    film = siren.film(frequencies, phase_shifts)
    trunk = [layer.folded(freq, phase_shift) for layer, (freq, phase_shift) in zip(siren.network, film)]
    colour_weight, colour_bias = siren.color_layer_sine.folded(*film[-1])
    n_directions = ray_directions.shape[-1]  # the colour layer reads cat([ray_directions, x])
    ray_term = torch.baddbmm(colour_bias.unsqueeze(1), ray_directions,
                             colour_weight[:, :, :n_directions].transpose(1, 2))
    heads = (siren.density_head.weight, siren.density_head.bias, siren.colour_head.weight, siren.colour_head.bias)
    return FoldedSiren(weights=[weight for weight, _ in trunk] + [colour_weight[:, :, n_directions:].contiguous()],
                       biases=[bias for _, bias in trunk], ray_term=ray_term, heads=heads)
