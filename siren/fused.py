"""Fast path of the FiLM SIREN: the function of forward_with_frequencies_phase_shifts, less work.

1. FiLM folded into the weights once per image (a [B, 256, 256] product, not a
   pass over every point):  sin(f * (W x + b) + p) = sin((f W) x + (f b + p)).
2. The colour layer split: Linear([d, x]) = W_x x + W_d d + b, with the direction
   term computed once per ray instead of once per sample, so the per-sample
   expanded directions are never built.
3. Only the pre-activations are kept for backward, which recomputes the sines.
   On the CPU, fused_cpu.py runs forward and backward in cache-sized chunks on
   single-threaded workers with fused sine kernels. Elsewhere (CUDA, autocast),
   fused_batched.py runs the folded layers as whole-batch torch ops.
"""

import torch
import torch.nn.functional as F

from .fused_batched import FoldedFiLMSiren, compute_dtype, folded_forward
from .fused_cpu import FusedFiLMSiren


def fold_film(siren, frequencies, phase_shifts, ray_directions):
    """Per-image weights [B, h, in], biases [B, h] of the FiLM layers (colour layer last,
    its weights only) and the colour layer's per-ray term [B, R, h]."""
    frequencies = frequencies * 15 + 30
    hidden = siren.hidden_dim
    weights, biases = [], []
    for index, film in enumerate(siren.network):
        f = frequencies[:, index * hidden:(index + 1) * hidden]
        p = phase_shifts[:, index * hidden:(index + 1) * hidden]
        weights.append(f.unsqueeze(2) * film.layer.weight)
        biases.append(torch.addcmul(p, f, film.layer.bias))
    f, p = frequencies[:, -hidden:].unsqueeze(1), phase_shifts[:, -hidden:].unsqueeze(1)
    colour = siren.color_layer_sine.layer  # its input is cat([direction, x])
    weights.append(f.transpose(1, 2) * colour.weight[:, 3:])
    direction_term = F.linear(ray_directions, colour.weight[:, :3], colour.bias)
    return weights, biases, torch.addcmul(p, f, direction_term)


def film_siren_forward(siren, points, ray_directions, frequencies, phase_shifts, chunked=None):
    """siren at points [B, R, S, 3] seen along ray_directions [B, R, 3] -> [B, R, S, 4].

    chunked: use fused_cpu.py (default: on the CPU without autocast).
    """
    batch, rays, steps, _ = points.shape
    weights, biases, ray_term = fold_film(siren, frequencies, phase_shifts, ray_directions)
    features = siren.features(points.reshape(batch, rays * steps, 3))
    heads = (siren.final_layer.weight, siren.final_layer.bias,
             siren.color_layer_linear[0].weight, siren.color_layer_linear[0].bias)
    if chunked is None:
        chunked = features.device.type == 'cpu' and not torch.is_autocast_enabled('cpu')
    inputs = (features, ray_term, *heads)
    layers = (*weights, *biases)
    for_backward = torch.is_grad_enabled() and any(t.requires_grad for t in inputs + layers)
    if chunked:
        inputs = tuple(t.contiguous() for t in inputs)
        out = FusedFiLMSiren.apply(*inputs, steps, for_backward, *layers)
    elif for_backward:
        out = FoldedFiLMSiren.apply(*inputs, steps, *layers)
    else:
        out = folded_forward(features, ray_term, heads, weights, biases, steps, compute_dtype(features))
    return out.reshape(batch, rays, steps, 4)
