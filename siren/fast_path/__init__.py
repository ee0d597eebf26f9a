"""Fast path of the FiLM SIREN: the function of forward_with_frequencies_phase_shifts, less work.

film_siren_forward is the one entry: fold FiLM into per-image weights taken from
the SIREN's own layers (fold.py), then run them on the kernel for the device:

- cpu.py (the CPU without autocast): forward and backward in cache-sized chunks
  of rays on the single-threaded workers of worker_pool.py, with the fused sine
  loops of sine_kernels.c;
- batched.py (CUDA, autocast): the folded layers as whole-batch torch ops.

Both keep only the pre-activations for backward, which recomputes the sines.
Which path a render takes is the generator's `fast_path` switch (see
generators/generators.py); the kernel follows the device.
"""

import torch

from . import batched, cpu
from .fold import fold_film


def kernel_for(features):
    """cpu on the CPU without autocast, batched elsewhere."""
    if features.device.type == 'cpu' and not torch.is_autocast_enabled('cpu'):
        return cpu
    return batched


def film_siren_forward(siren, points, ray_directions, frequencies, phase_shifts):
    """siren at points [B, R, S, 3] seen along ray_directions [B, R, 3] -> [B, R, S, 4].

    frequencies, phase_shifts [B, 9 * hidden]: the mapping network's outputs. Not twice differentiable.
    """
    batch, rays, steps, _ = points.shape
    folded = fold_film(siren, frequencies, phase_shifts, ray_directions)
    features = siren.features(points.reshape(batch, rays * steps, 3))
    tensors = (features, folded.ray_term, *folded.heads, *folded.weights, *folded.biases)
    for_backward = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    return kernel_for(features).run(folded, features, steps, for_backward).reshape(batch, rays, steps, 4)
