"""Patch training (GRAF, EpiGRAF): a step sees a random K x K patch of each image instead of the whole image.

A patch spans `scale` s of the image's side, s uniform in [patch_scale_min, 1], at a uniformly random place
inside the image. Its K x K points are where the generator casts its rays (ray_sampler.rays_from_cameras)
and where the real image, at full resolution, is resampled (bilinear): a generated and a real patch with
the same grid show the same part of the view. Points are F.grid_sample's, align_corners=True: x right,
y down, -1 and 1 the centres of the corner pixels, where the ray sampler puts the corner rays; so s = 1 and
K = img_size is the whole image, pixel for pixel. The discriminator is told each patch's scale
(discriminators.py, scale_channel). The step costs what a K x K step costs, while the surface is
supervised at img_size detail.

Curriculum keys (settings.PatchTraining): patch_size (K; 0 or None, the default, for whole images;
patches are drawn only at stages whose img_size is larger) and patch_scale_min (None, the default, for
(K - 1) / (img_size - 1): patch pixels as fine as the image's). The functions here take a settings.Settings.
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F

import curriculums


class Patches(NamedTuple):
    """The patches of a batch, or whole images (both None)."""
    grid: torch.Tensor = None   # [B, K, K, 2] points (x, y) in [-1, 1]
    scale: torch.Tensor = None  # [B] the patch's side over the image's


def patch_size(settings):
    """K when this stage trains on patches (patch_size set and below img_size), else None."""
    img_size = settings.rendering.img_size
    size = curriculums.discriminator_size(img_size, settings.patches.patch_size)
    return size if size < img_size else None


def scale_range(settings):
    """(smallest, largest) patch scale: patch_scale_min, by default one patch pixel per image pixel, to 1."""
    smallest = settings.patches.patch_scale_min
    if smallest is None:
        smallest = (patch_size(settings) - 1) / (settings.rendering.img_size - 1)
    if not 0 < smallest <= 1:
        raise curriculums.ConfigError(f"patch_scale_min must lie in (0, 1], got {smallest!r}")
    return smallest, 1.0


def patch_grid(scale, centre, size):
    """Points [B, K, K, 2] of K x K patches (K = size) spanning scale [B] of the image around centre [B, 2]."""
    steps = torch.linspace(-1, 1, size, device=scale.device)
    y, x = torch.meshgrid(steps, steps, indexing='ij')
    return centre[:, None, None, :] + scale[:, None, None, None] * torch.stack([x, y], -1)


def draw(batch_size, settings, device):
    """Random patches for a batch (draws nothing for whole images, so the step then is as without patches)."""
    size = patch_size(settings)
    if size is None:
        return Patches()
    smallest, largest = scale_range(settings)
    scale = smallest + (largest - smallest) * torch.rand(batch_size, device=device)
    centre = (1 - scale)[:, None] * (2 * torch.rand(batch_size, 2, device=device) - 1)  # the patch stays inside
    return Patches(patch_grid(scale, centre, size), scale)


def crop(images, patches):
    """The images [B, 3, H, W] at the patches' points [B, 3, K, K], bilinear; whole images unchanged."""
    if patches.grid is None:
        return images
    return F.grid_sample(images, patches.grid.to(images.dtype), mode='bilinear', padding_mode='border',
                         align_corners=True)


def split(patches, chunks):
    """The patches of each chunk of a batch split into chunks (tensors whose lengths add up to the batch)."""
    if patches.grid is None:
        return [patches] * len(chunks)
    sizes = [len(chunk) for chunk in chunks]
    return [Patches(*parts) for parts in zip(patches.grid.split(sizes), patches.scale.split(sizes))]
