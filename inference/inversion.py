"""Inverse rendering: the W-space latent (and optionally the camera poses) that reproduces images.

As in the original: start from the average frequencies and phase shifts, fit
offsets to them by Adam on the pixels' MSE, with noise on the offsets that
fades out over the run so early steps explore, and a decaying learning rate.

Extensions:
- multi-view: several images of one scene, each with its own known camera,
  share one latent (with optimize_pose, each view refines its own pose);
- fit_weights: the SIREN's weights are tuned along with the latent at their
  own small learning rate (pivotal tuning), on a copy of the generator. W space
  rarely holds a new scene exactly; tuned weights can, even from scratch;
- rays_per_step: NeRF-style steps on random pixels of all views, so a step
  costs the same however many views there are.
"""

import copy
import math
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from tqdm import trange

from generators.camera_utils import look_at_origin
from generators.ray_sampler import rays_from_cameras
from generators.renderer import render_options
from inference.rendering import Camera, Latent


class Fit(NamedTuple):
    latent: Latent          # average + fitted offsets
    offsets: Latent         # the fitted offsets alone
    camera: Camera          # the fitted (or given) pose of the first view
    losses: torch.Tensor    # MSE of each step (with that step's noise)
    initial_loss: float     # MSE at the start: average latent, initial poses, given weights
    final_loss: float       # MSE of the result, without noise
    cameras: tuple = ()     # every view's fitted (or given) pose, in the targets' order
    generator: Optional[torch.nn.Module] = None  # what renders the fit: the tuned copy with fit_weights


def fitting_options(options):
    """Render settings for fitting: one deterministic pass, so the loss is a smooth function of W."""
    return {**options, 'hierarchical_sample': False, 'nerf_noise': 0, 'perturb': False}


def view_cam2world(pitch, yaw):
    """cam2world [N, 4, 4] of views at pitch, yaw (0-d tensors for one view, or [N]); differentiable in both."""
    return look_at_origin(pitch.reshape(-1, 1), yaw.reshape(-1, 1))


def render_differentiable(generator, latent, pitch, yaw, options):
    """Pixels [N, 3, S, S] in [-1, 1] of N views of one latent, through the generator's renderer.

    pitch, yaw: 0-d tensors (one view) or [N]; differentiable in them, the latent and the weights.
    """
    cam2world = view_cam2world(pitch, yaw)
    views = cam2world.shape[0]
    pixels, _ = generator.render(latent.frequencies.expand(views, -1), latent.phase_shifts.expand(views, -1),
                                 cam2world, options['fov'], **render_options(options))
    return pixels


def render_chosen_rays(generator, latent, pitch, yaw, rays, options):
    """Colours [n, 3] in [-1, 1] of the pixels numbered rays [n] among all N views' pixels (view by view,
    row-major), rendered as one batch of rays of one latent. pitch, yaw: [N]; differentiable as above."""
    settings = render_options(options)
    origins, directions = rays_from_cameras(view_cam2world(pitch, yaw), options['fov'], settings.pop('img_size'))
    origins, directions = (x.flatten(0, 1)[rays].unsqueeze(0) for x in (origins, directions))
    rgb, _ = generator.render_rays(latent.frequencies, latent.phase_shifts, origins, directions, **settings)
    return rgb[0] * 2 - 1


def tunable_weights(generator):
    """The SIREN's own parameters: everything but the mapping network, which W bypasses."""
    return [p for name, p in generator.siren.named_parameters() if not name.startswith('mapping_network.')]


def cosine_decay(num_iterations, floor=0.02):
    """Learning-rate factor: cosine from 1 down to floor over the run (per group, unlike CosineAnnealingLR)."""
    return lambda step: floor + (1 - floor) * (1 + math.cos(math.pi * min(step, num_iterations) / num_iterations)) / 2


def fit_latent(generator, target, options, camera, num_iterations=500, lr=1e-2, pose_lr=5e-3,
               noise_scale=0.03, optimize_pose=False, seed=0, progress=True, fit_weights=False, weight_lr=1e-4,
               rays_per_step=None):
    """Fits W offsets (and poses, if optimize_pose) so renders match target [N, 3, S, S] in [-1, 1].

    target: N views of one scene (N = 1 for a single image); camera: the starting
    (or fixed) pose, a Camera for one view or a sequence of N Cameras. options:
    render settings with img_size equal to the targets' size. fit_weights: also
    tune the SIREN's weights (Adam at weight_lr) on a copy of the generator,
    returned as Fit.generator; the given generator is never changed.
    rays_per_step: each step renders that many pixels drawn at random from all
    views (NeRF-style batches: cheap steps, so more of them); None renders every pixel.
    """
    torch.manual_seed(seed)
    device = generator.device
    cameras = [camera] if isinstance(camera, Camera) else list(camera)
    target = target.to(device)
    if target.shape[0] != len(cameras):
        raise ValueError(f"{target.shape[0]} target images but {len(cameras)} cameras")
    if len({c.fov for c in cameras}) != 1:
        raise ValueError("all views must share one field of view")
    options = {**fitting_options(options), 'fov': cameras[0].fov}
    if fit_weights:
        generator = copy.deepcopy(generator)
        given_flags = [p.requires_grad for p in generator.parameters()]
        generator.requires_grad_(False)  # only the tuned weights need gradients
    average = Latent(*generator.generate_avg_frequencies())
    offsets = Latent(torch.zeros_like(average.frequencies, requires_grad=True),
                     torch.zeros_like(average.phase_shifts, requires_grad=True))
    yaw = torch.tensor([float(c.yaw) for c in cameras], device=device, requires_grad=optimize_pose)
    pitch = torch.tensor([float(c.pitch) for c in cameras], device=device, requires_grad=optimize_pose)
    colours = target.permute(0, 2, 3, 1).reshape(-1, 3)  # in the order of render_chosen_rays' numbers
    if rays_per_step is not None and rays_per_step >= colours.shape[0]:
        rays_per_step = None

    def loss_at(latent_offsets, rays=None):
        """MSE of every pixel, or of the pixels numbered rays (indices into all views' pixels)."""
        latent = Latent(average.frequencies + latent_offsets.frequencies,
                        average.phase_shifts + latent_offsets.phase_shifts)
        if rays is None:
            return F.mse_loss(render_differentiable(generator, latent, pitch, yaw, options), target)
        return F.mse_loss(render_chosen_rays(generator, latent, pitch, yaw, rays, options), colours[rays])

    with torch.no_grad():
        initial_loss = loss_at(offsets).item()
    groups = [{'params': list(offsets), 'lr': lr}]
    if optimize_pose:
        groups.append({'params': [yaw, pitch], 'lr': pose_lr})
    if fit_weights:
        weights = tunable_weights(generator)
        for weight in weights:
            weight.requires_grad_(True)
        groups.append({'params': weights, 'lr': weight_lr})
    optimizer = torch.optim.Adam(groups)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_decay(num_iterations))
    losses = []
    for step in trange(num_iterations, desc='fitting', unit='step', disable=not progress):
        # Noise that fades to zero: early steps see a blurred objective and escape poor starts.
        strength = noise_scale * (1 - step / num_iterations)
        noisy = Latent(*(offset + strength * torch.randn_like(offset) for offset in offsets))
        rays = None if rays_per_step is None else torch.randperm(colours.shape[0], device=device)[:rays_per_step]
        loss = loss_at(noisy, rays)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    if fit_weights:
        for parameter, flag in zip(generator.parameters(), given_flags):
            parameter.requires_grad_(flag)
    with torch.no_grad():
        final_loss = loss_at(offsets).item()
    fitted_offsets = Latent(offsets.frequencies.detach(), offsets.phase_shifts.detach())
    fitted_cameras = tuple(Camera(y, p, c.fov) for y, p, c in zip(yaw.tolist(), pitch.tolist(), cameras)
                           ) if optimize_pose else tuple(cameras)
    return Fit(latent=Latent(average.frequencies + fitted_offsets.frequencies,
                             average.phase_shifts + fitted_offsets.phase_shifts),
               offsets=fitted_offsets, camera=fitted_cameras[0],
               losses=torch.tensor(losses), initial_loss=initial_loss, final_loss=final_loss,
               cameras=fitted_cameras, generator=generator)


def fit_to_dict(fit, **extra):
    """The fit as plain tensors and numbers (loads with torch.load(weights_only=True)).

    yaw/pitch/fov are the first view's; 'cameras' lists every view's (yaw, pitch, fov).
    """
    return {'frequencies': fit.latent.frequencies.cpu(), 'phase_shifts': fit.latent.phase_shifts.cpu(),
            'frequency_offsets': fit.offsets.frequencies.cpu(), 'phase_shift_offsets': fit.offsets.phase_shifts.cpu(),
            'yaw': fit.camera.yaw, 'pitch': fit.camera.pitch, 'fov': fit.camera.fov,
            'cameras': [tuple(c) for c in fit.cameras],
            'losses': fit.losses, 'initial_loss': fit.initial_loss, 'final_loss': fit.final_loss, **extra}
