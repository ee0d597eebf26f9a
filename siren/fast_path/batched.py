"""FiLM-SIREN on the folded per-image weights of fold.py, as whole-batch torch ops.

The kernel for CUDA and for autocast (cpu.py is the plain-CPU one). Notation
as in cpu.py: z_l = y_{l-1} W_l[b]^T + bias_l[b], y_l = sin(z_l).

Under autocast everything runs in the autocast dtype, as autograd's batched
ops would. For training, FoldedFiLMSiren keeps one tensor per layer, the
pre-activation z_l in that dtype, and recomputes sin and cos from it in
backward. Autograd on the same ops would keep both y_{l-1} (for the weight
gradient) and z_l (for sin's), and the eager SIREN keeps three per layer, the
last in float32 even under autocast.
"""

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable


def compute_dtype(tensor):
    """The autocast dtype of tensor's device if autocast is on there, else tensor's dtype."""
    device_type = tensor.device.type
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return tensor.dtype


def folded_forward(features, ray_term, heads, weights, biases, steps, dtype, keep=None):
    """features [B, N, in], ray_term [B, R, h] -> [B, N, 4] rgb + sigma; N = R * steps.

    keep: a list that receives the pre-activations z_l [B, N, h], colour layer last.
    """
    w_sigma, b_sigma, w_rgb, b_rgb = (t.to(dtype) for t in heads)
    y = features.to(dtype)
    for weight, bias in zip(weights, biases):  # the FiLM layers; weights[-1] is the colour layer's
        z = torch.baddbmm(bias.to(dtype).unsqueeze(1), y, weight.to(dtype).transpose(1, 2))
        if keep is not None:
            keep.append(z)
        y = torch.sin(z)
    sigma = F.linear(y, w_sigma, b_sigma)
    batch, n_points, hidden = y.shape
    z = torch.bmm(y, weights[-1].to(dtype).transpose(1, 2)).view(batch, -1, steps, hidden)
    z = z.add_(ray_term.to(dtype).unsqueeze(2)).view(batch, n_points, hidden)
    if keep is not None:
        keep.append(z)
    rgb = torch.sigmoid(F.linear(torch.sin(z), w_rgb, b_rgb))
    return torch.cat([rgb, sigma], -1)


class FoldedFiLMSiren(torch.autograd.Function):
    """(features, ray_term, heads (w_sigma, b_sigma, w_rgb, b_rgb), steps, weights..., biases...) -> [B, N, 4]."""

    @staticmethod
    def forward(ctx, features, ray_term, w_sigma, b_sigma, w_rgb, b_rgb, steps, *layers):
        n_film = (len(layers) - 1) // 2
        weights, biases = layers[:n_film + 1], layers[n_film + 1:]
        ctx.input_dtypes = [t.dtype for t in (features, ray_term, w_sigma, b_sigma, w_rgb, b_rgb, *layers)]
        dtype = compute_dtype(features)
        heads = [t.to(dtype) for t in (w_sigma, b_sigma, w_rgb, b_rgb)]
        weights = [w.to(dtype) for w in weights]  # cast once, kept for backward
        pre_activations = []
        with torch.autocast(features.device.type, enabled=False):
            out = folded_forward(features, ray_term, heads, weights, biases, steps, dtype, keep=pre_activations)
        ctx.steps, ctx.n_film = steps, n_film
        ctx.save_for_backward(features, heads[0], heads[2], out, *weights, *pre_activations)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        steps, n_film = ctx.steps, ctx.n_film
        features, w_sigma, w_rgb, out, *rest = ctx.saved_tensors
        weights, z = rest[:n_film + 1], rest[n_film + 1:]
        dtype = z[0].dtype
        batch, n_points, hidden = z[0].shape
        grad_out = grad_out.to(dtype)

        rgb = out[..., :3]
        g_rgb = grad_out[..., :3] * rgb * (1 - rgb)  # through the sigmoid, [B, N, 3]
        g_sigma = grad_out[..., 3:]                   # [B, N, 1]
        sines = torch.sin(z[n_film])
        g_w_rgb = g_rgb.flatten(0, 1).t() @ sines.flatten(0, 1)
        grad = (g_rgb @ w_rgb).mul_(torch.cos(z[n_film]))  # w.r.t. the colour pre-activation
        g_ray_term = grad.view(batch, -1, steps, hidden).sum(2)
        sines = torch.sin(z[n_film - 1])  # y_7, read by the colour layer and the density head
        g_weights = [None] * (n_film + 1)
        g_biases = [None] * n_film
        g_weights[n_film] = grad.transpose(1, 2) @ sines
        g_w_sigma = g_sigma.flatten(0, 1).t() @ sines.flatten(0, 1)
        grad = torch.baddbmm(g_sigma * w_sigma, grad, weights[n_film])  # w.r.t. y_7
        g_features = None
        for layer in range(n_film - 1, -1, -1):
            grad.mul_(torch.cos(z[layer]))  # now w.r.t. z_layer
            inputs = torch.sin(z[layer - 1]) if layer > 0 else features.to(dtype)
            g_weights[layer] = grad.transpose(1, 2) @ inputs
            g_biases[layer] = grad.sum(1)
            if layer > 0:
                grad = grad @ weights[layer]
            elif ctx.needs_input_grad[0]:
                g_features = grad @ weights[0]
        grads = (g_features, g_ray_term, g_w_sigma, g_sigma.sum((0, 1)), g_w_rgb, g_rgb.sum((0, 1)),
                 *g_weights, *g_biases)
        grads = [None if g is None else g.to(t) for g, t in zip(grads, ctx.input_dtypes)]
        return (*grads[:6], None, *grads[6:])


def run(folded, features, steps, for_backward):
    """folded: fold.FoldedSiren; features [B, N, in], N = R * steps -> [B, N, 4] rgb + sigma.

    for_backward: keep the pre-activations for a backward pass (else plain ops, nothing kept).
    """
    if for_backward:
        return FoldedFiLMSiren.apply(features, folded.ray_term, *folded.heads, steps, *folded.weights, *folded.biases)
    return folded_forward(features, folded.ray_term, folded.heads, folded.weights, folded.biases, steps,
                          compute_dtype(features))
