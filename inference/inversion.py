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

import argparse
import copy
import math
from dataclasses import replace
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from tqdm import trange

from generators.camera_utils import Cameras
from generators.ray_sampler import rays_from_cameras
from inference.rendering import Latent, inference_rendering


LATENT_SPACES = ('w', 'z')
Z_STARTS = 16  # random z draws a z-space fit chooses its start from


class Fit(NamedTuple):
    latent: Latent          # average + fitted offsets
    offsets: Latent         # the fitted offsets alone
    camera: Cameras         # the fitted (or given) pose of the first view (on the CPU)
    losses: torch.Tensor    # MSE of each step (with that step's noise)
    initial_loss: float     # MSE at the start: average latent, initial poses, given weights
    final_loss: float       # MSE of the result, without noise
    cameras: Cameras        # every view's fitted (or given) pose, in the targets' order (on the CPU)
    generator: Optional[torch.nn.Module] = None  # what renders the fit: the tuned copy with fit_weights


def fitting_rendering(rendering):
    """The Rendering of fitting: one deterministic pass, so the loss is a smooth function of W."""
    return replace(rendering, hierarchical_sample=False, nerf_noise=0.0, perturb=False)


def render_differentiable(generator, latent, cameras, rendering):
    """Pixels [N, 3, S, S] in [-1, 1] of N views (Cameras) of one latent, through the generator's renderer
    (rendering: settings.Rendering); differentiable in the cameras' angles, the latent and the weights."""
    views = len(cameras)
    pixels, _ = generator.render(latent.frequencies.expand(views, -1), latent.phase_shifts.expand(views, -1),
                                 cameras, rendering)
    return pixels


def render_chosen_rays(generator, latent, cameras, rays, rendering):
    """Colours [n, 3] in [-1, 1] of the pixels numbered rays [n] among all N views' pixels (view by view,
    row-major), rendered as one batch of rays of one latent. cameras: the N views; differentiable as above."""
    origins, directions = rays_from_cameras(cameras.cam2world(), cameras.fov, rendering.img_size)
    origins, directions = (x.flatten(0, 1)[rays].unsqueeze(0) for x in (origins, directions))
    rgb, _ = generator.render_rays(latent.frequencies, latent.phase_shifts, origins, directions, rendering)
    return rgb[0] * 2 - 1


def tunable_weights(generator):
    """The SIREN's own parameters: everything but the mapping network, which W bypasses."""
    return [p for name, p in generator.siren.named_parameters() if not name.startswith('mapping_network.')]


def cosine_decay(num_iterations, floor=0.02):
    """Learning-rate factor: cosine from 1 down to floor over the run (per group, unlike CosineAnnealingLR)."""
    return lambda step: floor + (1 - floor) * (1 + math.cos(math.pi * min(step, num_iterations) / num_iterations)) / 2


def fit_latent(generator, target, rendering, cameras, num_iterations=500, lr=1e-2, pose_lr=5e-3,
               noise_scale=0.03, optimize_pose=False, seed=0, progress=True, fit_weights=False, weight_lr=1e-4,
               rays_per_step=None, latent_space='w', latent_weight=0.0):
    """Fits W offsets (and poses, if optimize_pose) so renders match target [N, 3, S, S] in [-1, 1].

    target: N views of one scene (N = 1 for a single image); cameras: the N views'
    starting (or fixed) poses, one Cameras; each view renders at its own fov. rendering:
    settings.Rendering with img_size equal to the targets' size. fit_weights: also
    tune the SIREN's weights (Adam at weight_lr) on a copy of the generator,
    returned as Fit.generator; the given generator is never changed.
    rays_per_step: each step renders that many pixels drawn at random from all
    views (NeRF-style batches: cheap steps, so more of them); None renders every pixel.
    latent_space: 'w' fits offsets from the average to every layer's frequencies and phase shifts (the
    mapping network's outputs, W+ in StyleGAN's terms); 'z' fits the mapping network's input z [1, z_dim]
    from the nearest (MSE) of Z_STARTS random draws, so the result is always one of the generator's own
    latents. latent_weight: the loss adds latent_weight times the mean square of the fitted W offsets, a pull
    towards the average head; in z, times (mean square of z - 1)^2, a pull towards the shell where random
    draws lie (z = 0 itself is no typical draw: its render can be a fog).
    """
    torch.manual_seed(seed)
    device = generator.device
    target = target.to(device)
    if target.shape[0] != len(cameras):
        raise ValueError(f"{target.shape[0]} target images but {len(cameras)} cameras")
    rendering = fitting_rendering(rendering)
    if fit_weights:
        generator = copy.deepcopy(generator)
        given_flags = [p.requires_grad for p in generator.parameters()]
        generator.requires_grad_(False)  # only the tuned weights need gradients
    if latent_space not in LATENT_SPACES:
        raise ValueError(f"latent_space must be one of {', '.join(LATENT_SPACES)}, got {latent_space!r}")
    average = Latent(*generator.generate_avg_frequencies())
    yaw, pitch = (angles.detach().to(device, copy=True).requires_grad_(optimize_pose)
                  for angles in (cameras.yaw, cameras.pitch))
    fov = cameras.fov.to(device)
    colours = target.permute(0, 2, 3, 1).reshape(-1, 3)  # in the order of render_chosen_rays' numbers
    if rays_per_step is not None and rays_per_step >= colours.shape[0]:
        rays_per_step = None

    def latent_of(fitted):
        if latent_space == 'z':
            return Latent(*generator.siren.mapping_network(fitted[0]))
        return Latent(average.frequencies + fitted[0], average.phase_shifts + fitted[1])

    if latent_space == 'w':
        offsets = Latent(torch.zeros_like(average.frequencies, requires_grad=True),
                         torch.zeros_like(average.phase_shifts, requires_grad=True))
    else:
        offsets = (nearest_z(generator, target, Cameras(yaw=yaw, pitch=pitch, fov=fov), rendering, seed)
                   .requires_grad_(True),)

    def loss_at(fitted, rays=None, regularised=False):
        """MSE of every pixel, or of the pixels numbered rays (indices into all views' pixels); plus the
        pull towards the average if regularised."""
        latent, posed = latent_of(fitted), Cameras(yaw=yaw, pitch=pitch, fov=fov)
        if rays is None:
            loss = F.mse_loss(render_differentiable(generator, latent, posed, rendering), target)
        else:
            loss = F.mse_loss(render_chosen_rays(generator, latent, posed, rays, rendering), colours[rays])
        if regularised and latent_weight and latent_space == 'z':
            loss = loss + latent_weight * (fitted[0].pow(2).mean() - 1).pow(2)
        elif regularised and latent_weight:
            loss = loss + latent_weight * sum(x.pow(2).mean() for x in fitted) / len(fitted)
        return loss

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
        noisy = [offset + strength * torch.randn_like(offset) for offset in offsets]
        rays = None if rays_per_step is None else torch.randperm(colours.shape[0], device=device)[:rays_per_step]
        loss = loss_at(noisy, rays, regularised=True)
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
        fitted = latent_of(offsets)
    fitted = Latent(fitted.frequencies.detach(), fitted.phase_shifts.detach())
    fitted_offsets = Latent(fitted.frequencies - average.frequencies, fitted.phase_shifts - average.phase_shifts)
    fitted_cameras = (Cameras(yaw=yaw, pitch=pitch, fov=fov).detach() if optimize_pose else cameras).to('cpu')
    return Fit(latent=fitted, offsets=fitted_offsets, camera=fitted_cameras[0],
               losses=torch.tensor(losses), initial_loss=initial_loss, final_loss=final_loss,
               cameras=fitted_cameras, generator=generator)


def nearest_z(generator, target, cameras, rendering, seed, count=None):
    """The one of count (Z_STARTS) z draws [1, z_dim] of a seeded stream whose render at cameras is nearest
    (MSE, every view) to target [N, 3, S, S]."""
    draws = torch.randn(count or Z_STARTS, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    draws = draws.to(generator.device)
    with torch.no_grad():
        errors = [F.mse_loss(render_differentiable(generator, Latent(*generator.siren.mapping_network(z[None])),
                                                   cameras, rendering), target).item() for z in draws]
    return draws[int(torch.tensor(errors).argmin())][None].clone()


def fit_to_dict(fit, **extra):
    """The fit as plain tensors and numbers (loads with torch.load(weights_only=True)).

    yaw/pitch/fov are the first view's; 'cameras' lists every view's (yaw, pitch, fov).
    """
    (yaw, pitch, fov), = fit.camera.tolist()
    return {'frequencies': fit.latent.frequencies.cpu(), 'phase_shifts': fit.latent.phase_shifts.cpu(),
            'frequency_offsets': fit.offsets.frequencies.cpu(), 'phase_shift_offsets': fit.offsets.phase_shifts.cpu(),
            'yaw': yaw, 'pitch': pitch, 'fov': fov, 'cameras': fit.cameras.tolist(),
            'losses': fit.losses, 'initial_loss': fit.initial_loss, 'final_loss': fit.final_loss, **extra}


# --- as inverse_render.py runs it --------------------------------------------------------

def add_fit_arguments(parser):
    """inverse_render.py's options of the fit itself (the benchmark parses the same ones: metrics/inversion.py)."""
    parser.add_argument('--image_size', type=int, default=64, help="resolution the fit is done at")
    parser.add_argument('--num_iterations', '--n_iterations', type=int, default=700, help="optimisation steps")
    parser.add_argument('--lr', type=float, default=1e-2, help="initial learning rate of the latent offsets")
    parser.add_argument('--latent_space', choices=LATENT_SPACES, default='w',
                        help="w: every layer's frequencies and phase shifts (W+); z: the mapping network's input")
    parser.add_argument('--latent_weight', type=float, default=0.0,
                        help="weight of the mean square of the fitted offsets (of z) in the loss")
    parser.add_argument('--noise_scale', type=float, default=0.03,
                        help="std of the noise on the offsets at the start (fades to 0)")
    parser.add_argument('--optimize_pose', action=argparse.BooleanOptionalAction, default=False,
                        help="also fit the camera's yaw and pitch (each view's, with --view)")
    parser.add_argument('--pose_lr', type=float, default=5e-3, help="learning rate of yaw and pitch")
    parser.add_argument('--pose_search', action=argparse.BooleanOptionalAction, default=True,
                        help="with --optimize_pose and no starting pose given: start the first view from the "
                             "best of a grid of poses over the curriculum's pose range (the average head rendered)")
    parser.add_argument('--pose_starts', type=int, default=3,
                        help="with --pose_search: short fits from this many of the best grid poses; the full fit "
                             "starts where the best of them ended (1: from the best grid pose)")
    parser.add_argument('--start_iterations', type=int, default=30, help="steps of each short fit of --pose_starts")
    parser.add_argument('--fit_weights', action='store_true',
                        help="also tune the SIREN's weights; saves the tuned generator.pth and ema.pth")
    parser.add_argument('--weight_lr', type=float, default=1e-4, help="learning rate of the tuned weights")
    parser.add_argument('--rays_per_step', type=int, default=None,
                        help="pixels per step, drawn at random from all views (default: every pixel)")
    parser.add_argument('--ray_step_multiplier', type=float, default=2,
                        help="samples per ray = the curriculum's num_steps times this")
    parser.add_argument('--lock_view_dependence', action='store_true',
                        help="colour independent of view direction (always, for a generator trained locked)")
    parser.add_argument('--seed', type=int, default=0, help="seed of the fitting noise")


def fit_arguments(argv=()):
    """The fit's options parsed from command-line words, with inverse_render.py's defaults."""
    parser = argparse.ArgumentParser(prog='inversion', add_help=False)
    add_fit_arguments(parser)
    return parser.parse_args(list(argv))


def pose_grid(camera, spread=2.0, yaws=9, pitches=5):
    """Cameras, yaws * pitches of them (pitch by pitch), over a pose distribution's range (camera:
    settings.CameraDistribution): mean +- spread std devs in each angle, at its fov."""
    def angles(mean, stddev, count):
        return torch.linspace(mean - spread * stddev, mean + spread * stddev, count)
    pitch, yaw = torch.meshgrid(angles(camera.v_mean, camera.v_stddev, pitches),
                                angles(camera.h_mean, camera.h_stddev, yaws), indexing='ij')
    return Cameras(yaw=yaw, pitch=pitch, fov=camera.fov)


def search_pose(generator, target, rendering, cameras, count=1):
    """The count of cameras (Cameras) whose renders of the average latent are nearest (MSE) to target
    [1, 3, S, S], as Cameras, best first: starts for the pose that gradient steps from the mean pose miss
    (they only slide downhill)."""
    average = Latent(*generator.generate_avg_frequencies())
    rendering = fitting_rendering(rendering)
    with torch.no_grad():
        errors = torch.cat([
            ((render_differentiable(generator, average, cameras[i:i + 9].to(generator.device), rendering)
              - target.to(generator.device)) ** 2).mean((1, 2, 3)) for i in range(0, len(cameras), 9)])
    return cameras[errors.argsort()[:count].tolist()]


def best_start(generator, target, rendering, cameras, args):
    """The pose (Cameras of one) reached by the best of short fits (args.start_iterations steps of latent and
    pose) from each of cameras: the average head alone sometimes prefers a wrong cell (a head seen from the
    other side, a face lower in the frame) that the fitted latent tells apart."""
    fits = [fit_latent(generator, target, rendering, camera, args.start_iterations, args.lr, args.pose_lr,
                       args.noise_scale, True, args.seed, progress=False, latent_space=args.latent_space,
                       latent_weight=args.latent_weight) for camera in cameras]
    return min(fits, key=lambda fit: fit.final_loss).camera


def invert(generator, settings, targets, cameras, args, search_pose_first=True, progress=True):
    """fit_latent as inverse_render.py runs it, for a generator loaded with settings (settings.Settings).
    targets [N, 3, S, S] in [-1, 1] at args.image_size; cameras:
    the N starting (or known) poses, one Cameras; args: add_fit_arguments' options. With args.optimize_pose and
    args.pose_search, the first view starts from search_pose's camera unless search_pose_first is False
    (a starting pose the user gave)."""
    rendering = inference_rendering(settings, args.image_size, args.ray_step_multiplier, args.lock_view_dependence)
    if args.optimize_pose and args.pose_search and search_pose_first:
        grid = pose_grid(replace(settings.camera, fov=float(cameras.fov[0])))
        starts = search_pose(generator, targets[:1], rendering, grid, count=max(1, args.pose_starts))
        first = best_start(generator, targets[:1], rendering, starts, args) if len(starts) > 1 else starts
        cameras = Cameras.cat([first, cameras[1:]])
    return fit_latent(generator, targets, rendering, cameras, args.num_iterations, args.lr, args.pose_lr,
                      args.noise_scale, args.optimize_pose, args.seed, progress=progress,
                      fit_weights=args.fit_weights, weight_lr=args.weight_lr, rays_per_step=args.rays_per_step,
                      latent_space=args.latent_space, latent_weight=args.latent_weight)
