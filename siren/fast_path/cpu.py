"""FiLM-SIREN forward and backward on the CPU, in cache-sized chunks of rays.

Runs the folded per-image weights of fold.py. For image b and layer l:
    z_l = y_{l-1} W_l[b]^T + bias_l[b],  y_l = sin(z_l),  y_{-1} = the input features
    z_c = y_7 W_c[b]^T + ray_term[b, ray],  rgb = sigmoid(sin(z_c) W_rgb^T + b_rgb)
    sigma = y_7 w_sigma^T + b_sigma
Each chunk of rays (CHUNK_ACTIVATIONS activations: 1024 points at width 256)
goes through all layers while they are in cache, on the workers of
worker_pool.py. Only the pre-activations z are saved for backward (one buffer
for all layers); the backward recomputes sin and cos from them per chunk, which
costs less than writing and re-reading the sines.
"""

import torch
from torch.autograd.function import once_differentiable

from .sine_kernels import add_bias_sin_, sin_and_mul_cos_
from .worker_pool import for_each_chunk

CHUNK_ACTIVATIONS = 1024 * 256  # 1 MB of float32 per [points, hidden] buffer: fits in L2


def _scratch(state, name, rows, like):
    """A per-worker [rows, hidden] buffer, reused across chunks."""
    buffer = state.get(name)
    if buffer is None or buffer.shape[0] < rows:
        buffer = state[name] = like.new_empty(rows, like.shape[-1])
    return buffer[:rows]


def _chunks(batch, rays, steps, hidden):
    per_chunk = max(1, CHUNK_ACTIVATIONS // (steps * hidden))  # rays
    return [(b, r0, min(rays, r0 + per_chunk)) for b in range(batch) for r0 in range(0, rays, per_chunk)]


class FusedFiLMSiren(torch.autograd.Function):
    """(features [B,N,in], ray_term [B,R,h], heads, folded layers) -> [B,N,4] rgb+sigma; N = R*steps.

    `for_backward`: whether to save the pre-activations (apply() can't tell: it
    runs forward with grad mode off).
    """

    @staticmethod
    def forward(ctx, features, ray_term, w_sigma, b_sigma, w_rgb, b_rgb, steps, for_backward, *layers):
        n_film = (len(layers) - 1) // 2
        weights, biases = layers[:n_film + 1], layers[n_film + 1:]  # weights[-1]: colour layer
        batch, n_points, _ = features.shape
        hidden = ray_term.shape[-1]
        out = features.new_empty(batch, n_points, 4)
        saved = features.new_empty(n_film + 1, batch, n_points, hidden) if for_backward else None

        def run(chunk, state):
            b, r0, r1 = chunk
            p0, p1 = r0 * steps, r1 * steps
            rows = p1 - p0
            y = features[b, p0:p1]
            for layer, weight in enumerate(weights):
                z = saved[layer, b, p0:p1] if saved is not None else _scratch(state, 'z', rows, ray_term)
                torch.mm(y, weight[b].t(), out=z)
                if layer == n_film:  # colour layer: density head first, it reads y_7
                    out[b, p0:p1, 3:] = torch.addmm(b_sigma, y, w_sigma.t())
                    bias, rows_per_bias = ray_term[b, r0:r1], steps
                else:
                    bias, rows_per_bias = biases[layer][b:b + 1], rows
                y = add_bias_sin_(z, bias, _scratch(state, 'y', rows, ray_term), rows_per_bias)
            out[b, p0:p1, :3] = torch.addmm(b_rgb, y, w_rgb.t()).sigmoid_()

        for_each_chunk(_chunks(batch, ray_term.shape[1], steps, hidden), run)
        if saved is not None:
            ctx.save_for_backward(features, ray_term, w_sigma, w_rgb, out, *weights)
            ctx.pre_activations = saved
            ctx.steps = steps
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        saved = ctx.pre_activations
        features, ray_term, w_sigma, w_rgb, out, *weights = ctx.saved_tensors
        steps, n_film = ctx.steps, len(weights) - 1
        batch, rays, hidden = ray_term.shape
        grad_out = grad_out.contiguous()
        grad_features = torch.empty_like(features) if ctx.needs_input_grad[0] else None
        grad_ray_term = torch.empty_like(ray_term)

        def sums_for(state, b):
            """This worker's partial sums of the parameter gradients of image b."""
            if b not in state:
                state[b] = {'weights': [torch.zeros_like(w[b]) for w in weights],
                            'biases': ray_term.new_zeros(n_film, hidden),
                            'heads': [torch.zeros_like(w_sigma), w_sigma.new_zeros(1),
                                      torch.zeros_like(w_rgb), w_rgb.new_zeros(3)]}
            return state[b]

        def run(chunk, state):
            b, r0, r1 = chunk
            p0, p1 = r0 * steps, r1 * steps
            rows = p1 - p0
            sums = sums_for(state, b)
            g_w_sigma, g_b_sigma, g_w_rgb, g_b_rgb = sums['heads']
            rgb = out[b, p0:p1, :3]
            g_rgb = grad_out[b, p0:p1, :3] * rgb * (1 - rgb)  # through the sigmoid
            g_sigma = grad_out[b, p0:p1, 3:]
            grad = torch.mm(g_rgb, w_rgb, out=_scratch(state, 'g0', rows, ray_term))
            sines = sin_and_mul_cos_(saved[n_film, b, p0:p1], _scratch(state, 's', rows, ray_term), grad)
            g_w_rgb.addmm_(g_rgb.t(), sines)
            g_b_rgb += g_rgb.sum(0)
            torch.sum(grad.view(r1 - r0, steps, hidden), 1, out=grad_ray_term[b, r0:r1])
            # Back through the colour layer and the density head to y_7, then down the FiLM layers.
            other = torch.mm(grad, weights[n_film][b], out=_scratch(state, 'g1', rows, ray_term))
            other.addmm_(g_sigma, w_sigma)
            sines = sin_and_mul_cos_(saved[n_film - 1, b, p0:p1], sines, other)
            sums['weights'][n_film].addmm_(grad.t(), sines)
            g_w_sigma.addmm_(g_sigma.t(), sines)
            g_b_sigma += g_sigma.sum()
            grad, other = other, grad
            for layer in range(n_film - 1, -1, -1):
                if layer > 0:  # grad w.r.t. y_{layer-1}, then z_{layer-1}; sines = y_{layer-1}
                    torch.mm(grad, weights[layer][b], out=other)
                    inputs = sin_and_mul_cos_(saved[layer - 1, b, p0:p1], sines, other)
                else:
                    inputs = features[b, p0:p1]
                    if grad_features is not None:
                        torch.mm(grad, weights[0][b], out=grad_features[b, p0:p1])
                sums['weights'][layer].addmm_(grad.t(), inputs)
                sums['biases'][layer] += grad.sum(0)
                grad, other = other, grad

        states = for_each_chunk(_chunks(batch, rays, steps, hidden), run)
        per_image = [[state[b] for state in states if b in state] for b in range(batch)]
        grad_weights = [torch.stack([sum(s['weights'][layer] for s in parts) for parts in per_image])
                        for layer in range(n_film + 1)]
        grad_biases = torch.stack([sum(s['biases'] for s in parts) for parts in per_image], 1)
        grad_heads = [sum(s['heads'][i] for parts in per_image for s in parts) for i in range(4)]
        return (grad_features, grad_ray_term, *grad_heads, None, None, *grad_weights, *grad_biases.unbind(0))


def run(folded, features, steps, for_backward):
    """folded: fold.FoldedSiren; features [B, N, in], N = R * steps -> [B, N, 4] rgb + sigma.

    for_backward: keep the pre-activations for a backward pass.
    """
    inputs = tuple(t.contiguous() for t in (features, folded.ray_term, *folded.heads))
    return FusedFiLMSiren.apply(*inputs, steps, for_backward, *folded.weights, *folded.biases)
