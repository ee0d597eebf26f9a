"""One discriminator step and one generator step, as in the original pi-GAN (the losses are in loss.py).

Both take the step's settings.Settings and hand the networks what they read, as explicit arguments.
With patch training (patches.py) both networks see random patches instead of whole images: the generator
renders the fake ones, the real ones are resampled from the real images, and R1 is taken on the real patches.
"""

import math
from dataclasses import dataclass
from typing import Callable

import torch

from torch_utils.latents import z_sampler
from training import patches
from training.loss import (discriminator_gan_loss, generator_gan_loss, identity_penalty, r1_penalty,
                           real_pose_penalty)
from training.schedules import topk_fraction


@dataclass
class Trainer:
    """What the steps work with: the networks (DDP-wrapped when distributed), their optimisers, the gradient
    scaler, autocast() for the run's precision and no_sync(sync), which defers the all-reduce unless sync."""
    generator_ddp: torch.nn.Module
    discriminator_ddp: torch.nn.Module
    optimizer_G: torch.optim.Optimizer
    optimizer_D: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    autocast: Callable
    no_sync: Callable


def split(tensor, parts):
    """Splits a batch into `parts` chunks covering every row."""
    return torch.split(tensor, math.ceil(tensor.shape[0] / parts))


def sample_z(settings, batch_size, device):
    return z_sampler((batch_size, settings.networks.latent_dim), device, settings.networks.z_dist)


def discriminator_step(trainer, real_imgs, real_poses, alpha, settings):
    """Non-saturating D loss + R1 on reals + identity losses; returns the loss (a 0-d tensor).

    real_poses [B, 2] (pitch, yaw) enter the loss only under use_real_poses; photos have none.
    """
    G, D, scaler, autocast = trainer.generator_ddp, trainer.discriminator_ddp, trainer.scaler, trainer.autocast
    losses, noise = settings.losses, settings.losses.instance_noise
    gen_patches, real_patches = (patches.draw(real_imgs.shape[0], settings, real_imgs.device) for _ in range(2))
    real_imgs = patches.crop(real_imgs, real_patches)
    with autocast():
        with torch.no_grad():
            z = sample_z(settings, real_imgs.shape[0], real_imgs.device)
            chunks = split(z, settings.optimisation.batch_split)
            generated = [G(subset_z, settings.rendering, settings.camera, patch_grid=chunk_patches.grid)
                         for subset_z, chunk_patches in zip(chunks, patches.split(gen_patches, chunks))]
            gen_imgs = torch.cat([images for images, _ in generated])
            gen_positions = torch.cat([positions for _, positions in generated])
        real_imgs.requires_grad_(True)
        r_preds, _, r_pred_position = D(real_imgs, alpha, instance_noise=noise, scale=real_patches.scale)

    grad_penalty = 0
    if losses.r1_lambda > 0:
        # R1 on the unscaled gradient, so fp16 loss scaling does not change the penalty.
        (grad_real,) = torch.autograd.grad(scaler.scale(r_preds.sum()), real_imgs, create_graph=True)
        grad_real = grad_real * (1.0 / scaler.get_scale())
    with autocast():
        if losses.r1_lambda > 0:
            grad_penalty = r1_penalty(grad_real, losses.r1_lambda)
        g_preds, g_pred_latent, g_pred_position = D(gen_imgs, alpha, instance_noise=noise, scale=gen_patches.scale)
        # With disc_fake_pose False, D's pose head learns real poses only, so the generator
        # cannot settle with D on a pose reading of its own that differs from the real one.
        penalty = identity_penalty(losses, g_pred_latent, z, g_pred_position, gen_positions,
                                   fake_pose=losses.disc_fake_pose)
        if losses.use_real_poses:
            penalty = penalty + real_pose_penalty(r_pred_position, real_poses, losses.pos_lambda)
        d_loss = discriminator_gan_loss(g_preds, r_preds) + grad_penalty + penalty
    return d_loss


def apply_discriminator_update(trainer, d_loss, settings):
    trainer.optimizer_D.zero_grad(set_to_none=True)
    trainer.scaler.scale(d_loss).backward()
    trainer.scaler.unscale_(trainer.optimizer_D)
    torch.nn.utils.clip_grad_norm_(trainer.discriminator_ddp.parameters(), settings.optimisation.grad_clip)
    trainer.scaler.step(trainer.optimizer_D)


def generator_step(trainer, batch_size, alpha, settings, step, device):
    """Accumulates the top-k non-saturating G loss over batch_split chunks, then steps.

    Returns (mean loss over chunks, top-k count of the last chunk).
    """
    G, D, scaler = trainer.generator_ddp, trainer.discriminator_ddp, trainer.scaler
    gen_patches = patches.draw(batch_size, settings, device)
    z = sample_z(settings, batch_size, device)
    chunks = split(z, settings.optimisation.batch_split)
    losses, topk_num = [], 0
    for index, (subset_z, chunk_patches) in enumerate(zip(chunks, patches.split(gen_patches, chunks))):
        sync = index == len(chunks) - 1
        with trainer.no_sync(sync):  # gradients are all-reduced once, after the last chunk
            with trainer.autocast():
                gen_imgs, gen_positions = G(subset_z, settings.rendering, settings.camera,
                                            patch_grid=chunk_patches.grid)
                g_preds, g_pred_latent, g_pred_position = D(gen_imgs, alpha,
                                                            instance_noise=settings.losses.instance_noise,
                                                            scale=chunk_patches.scale)
                topk_num = math.ceil(topk_fraction(settings.optimisation, step) * g_preds.shape[0])
                g_preds = torch.topk(g_preds, topk_num, dim=0).values
                penalty = identity_penalty(settings.losses, g_pred_latent, subset_z, g_pred_position, gen_positions)
                g_loss = generator_gan_loss(g_preds) + penalty
            scaler.scale(g_loss).backward()
        losses.append(g_loss.detach())
    return torch.stack(losses).float().mean(), topk_num


def apply_generator_update(trainer, settings):
    trainer.scaler.unscale_(trainer.optimizer_G)
    torch.nn.utils.clip_grad_norm_(trainer.generator_ddp.parameters(), settings.optimisation.grad_clip)
    trainer.scaler.step(trainer.optimizer_G)
    trainer.scaler.update()
    trainer.optimizer_G.zero_grad(set_to_none=True)
