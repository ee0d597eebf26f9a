"""The pi-GAN losses: non-saturating GAN losses, the R1 penalty, and the identity losses that make
the discriminator predict each image's latent z and camera pose (pitch, yaw)."""

import torch
import torch.nn.functional as F


def discriminator_gan_loss(g_preds, r_preds):
    """Non-saturating: generated images scored low, real ones high. Predictions [B, 1]."""
    return F.softplus(g_preds).mean() + F.softplus(-r_preds).mean()


def generator_gan_loss(g_preds):
    """Non-saturating: generated images scored high."""
    return F.softplus(-g_preds).mean()


def r1_penalty(grad_real, r1_lambda):
    """0.5 * r1_lambda * E[|d D(real) / d real|^2]; grad_real [B, 3, H, W]."""
    return 0.5 * r1_lambda * grad_real.flatten(1).norm(2, dim=1).pow(2).mean()


def identity_penalty(losses, pred_latent, z, pred_position, position, fake_pose=True):
    """Weighted MSE between the discriminator's predicted and the sampled z (z_lambda) and
    (pitch, yaw) (pos_lambda, the pose loss; left out when `fake_pose` is False) of generated images.
    losses: settings.Losses."""
    penalty = 0
    if losses.z_lambda > 0:
        penalty = penalty + F.mse_loss(pred_latent, z) * losses.z_lambda
    if fake_pose and losses.pos_lambda > 0:
        penalty = penalty + F.mse_loss(pred_position, position) * losses.pos_lambda
    return penalty


def real_pose_penalty(pred_position, real_poses, pos_lambda):
    """The pose loss on real images, where the dataset knows their pose (rows of real_poses [B, 2]
    without NaN; the original used CelebA's pose file). 0 when there are none or pos_lambda is 0."""
    known = torch.isfinite(real_poses).all(dim=1)
    if not (pos_lambda > 0 and known.any()):
        return 0
    return F.mse_loss(pred_position[known], real_poses[known].to(pred_position.dtype)) * pos_lambda
