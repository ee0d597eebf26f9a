"""Inverse rendering: the W-space latent (and optionally the camera pose) that reproduces an image.

As in the original: start from the average frequencies and phase shifts, fit
offsets to them by Adam on the pixels' MSE, with noise on the offsets that
fades out over the run so early steps explore, and a decaying learning rate.
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F
from tqdm import trange

from generators.camera_utils import look_at_origin
from generators.ray_marcher import fancy_integration
from generators.ray_sampler import get_initial_rays_trig
from torch_utils.rendering import Camera, Latent


class Fit(NamedTuple):
    latent: Latent          # average + fitted offsets
    offsets: Latent         # the fitted offsets alone
    camera: Camera          # the fitted (or given) pose
    losses: torch.Tensor    # MSE of each step (with that step's noise)
    initial_loss: float     # MSE at the start: average latent, initial pose
    final_loss: float       # MSE of the result, without noise


def fitting_options(options):
    """Render settings for fitting: one deterministic pass, so the loss is a smooth function of W."""
    return {**options, 'hierarchical_sample': False, 'nerf_noise': 0, 'perturb': False}


def render_differentiable(generator, latent, pitch, yaw, options):
    """Pixels [1, 3, S, S] in [-1, 1], differentiable in the latent and in pitch/yaw (0-d tensors).

    The camera looks at the origin from the unit sphere, as in the generator's
    renderer; without hierarchical sampling or jitter the two render the same.
    """
    size, device = options['img_size'], latent.frequencies.device
    points, z_vals, directions = get_initial_rays_trig(1, options['num_steps'], device, options['fov'],
                                                       (size, size), options['ray_start'], options['ray_end'])
    cam2world = look_at_origin(pitch.reshape(1, 1), yaw.reshape(1, 1))
    rotation, origin = cam2world[:, :3, :3], cam2world[:, :3, 3]
    points = torch.einsum('bij,brsj->brsi', rotation, points) + origin[:, None, None, :]
    if options.get('lock_view_dependence'):
        view_directions = torch.zeros_like(directions)
        view_directions[..., -1] = -1
    else:
        view_directions = torch.einsum('bij,brj->bri', rotation, directions)
    outputs = generator.evaluate_siren(points, view_directions, latent.frequencies, latent.phase_shifts)
    rgb, _, _ = fancy_integration(outputs, z_vals, noise_std=0, clamp_mode=options['clamp_mode'],
                                  white_back=options.get('white_back', False),
                                  last_back=options.get('last_back', False))
    return rgb.reshape(1, size, size, 3).permute(0, 3, 1, 2) * 2 - 1


def fit_latent(generator, target, options, camera, num_iterations=500, lr=1e-2, pose_lr=5e-3,
               noise_scale=0.03, optimize_pose=False, seed=0, progress=True):
    """Fits W offsets (and the pose, if optimize_pose) so a render matches target [1, 3, S, S] in [-1, 1].

    options: render settings with img_size equal to the target's size; camera:
    the starting (or fixed) pose.
    """
    torch.manual_seed(seed)
    device = generator.device
    options = fitting_options(options)
    target = target.to(device)
    average = Latent(*generator.generate_avg_frequencies())
    offsets = Latent(torch.zeros_like(average.frequencies, requires_grad=True),
                     torch.zeros_like(average.phase_shifts, requires_grad=True))
    yaw = torch.tensor(float(camera.yaw), device=device, requires_grad=optimize_pose)
    pitch = torch.tensor(float(camera.pitch), device=device, requires_grad=optimize_pose)
    fitted_options = {**options, 'fov': camera.fov}

    def loss_at(latent_offsets):
        latent = Latent(average.frequencies + latent_offsets.frequencies,
                        average.phase_shifts + latent_offsets.phase_shifts)
        return F.mse_loss(render_differentiable(generator, latent, pitch, yaw, fitted_options), target)

    with torch.no_grad():
        initial_loss = loss_at(offsets).item()
    groups = [{'params': list(offsets), 'lr': lr}]
    if optimize_pose:
        groups.append({'params': [yaw, pitch], 'lr': pose_lr})
    optimizer = torch.optim.Adam(groups)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, num_iterations, eta_min=lr * 0.02)
    losses = []
    for step in trange(num_iterations, desc='fitting', unit='step', disable=not progress):
        # Noise that fades to zero: early steps see a blurred objective and escape poor starts.
        strength = noise_scale * (1 - step / num_iterations)
        noisy = Latent(*(offset + strength * torch.randn_like(offset) for offset in offsets))
        loss = loss_at(noisy)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    with torch.no_grad():
        final_loss = loss_at(offsets).item()
    fitted_offsets = Latent(offsets.frequencies.detach(), offsets.phase_shifts.detach())
    return Fit(latent=Latent(average.frequencies + fitted_offsets.frequencies,
                             average.phase_shifts + fitted_offsets.phase_shifts),
               offsets=fitted_offsets,
               camera=Camera(yaw.item(), pitch.item(), camera.fov),
               losses=torch.tensor(losses), initial_loss=initial_loss, final_loss=final_loss)


def fit_to_dict(fit, **extra):
    """The fit as plain tensors and numbers (loads with torch.load(weights_only=True))."""
    return {'frequencies': fit.latent.frequencies.cpu(), 'phase_shifts': fit.latent.phase_shifts.cpu(),
            'frequency_offsets': fit.offsets.frequencies.cpu(), 'phase_shift_offsets': fit.offsets.phase_shifts.cpu(),
            'yaw': fit.camera.yaw, 'pitch': fit.camera.pitch, 'fov': fit.camera.fov,
            'losses': fit.losses, 'initial_loss': fit.initial_loss, 'final_loss': fit.final_loss, **extra}
