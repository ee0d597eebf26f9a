"""Latent codes z, drawn from the curriculum's z_dist (training and evaluation draw them alike)."""

import torch


def z_sampler(shape, device, dist):
    """z of the given shape, [batch, latent_dim]: 'gaussian' N(0, 1) or 'uniform' U(-1, 1)."""
    if dist == 'gaussian':
        return torch.randn(shape, device=device)
    if dist == 'uniform':
        return torch.rand(shape, device=device) * 2 - 1
    raise ValueError(f"unknown z_dist {dist!r}; use 'gaussian' or 'uniform'")
