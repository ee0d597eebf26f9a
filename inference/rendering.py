"""Inference rendering shared by the scripts: latents from seeds, cameras, views.

A latent here is a point of W space, the mapping network's output: a pair of
frequencies and phase shifts, [1, F] each. Cameras (generators/camera_utils.py)
are poses and fields of view; views are rendered at exactly those cameras.
"""

import math
from contextlib import ExitStack
from dataclasses import replace
from typing import NamedTuple

import numpy as np
import torch
from tqdm import tqdm

from generators.camera_utils import Cameras
from utils.media import VideoWriter, depth_to_uint8, to_uint8


class Latent(NamedTuple):
    frequencies: torch.Tensor
    phase_shifts: torch.Tensor

    def lerp(self, other, t):
        return Latent(torch.lerp(self.frequencies, other.frequencies, t),
                      torch.lerp(self.phase_shifts, other.phase_shifts, t))


def z_from_seed(seed, z_dim):
    """The latent z of a seed, as the original scripts drew it (on the CPU, so any device agrees)."""
    torch.manual_seed(seed)
    return torch.randn((1, z_dim))


def latent_from_seed(generator, seed, psi=1.0):
    """W-space latent of a seed, pulled towards the average by psi (truncation)."""
    z = z_from_seed(seed, generator.z_dim).to(generator.device)
    with torch.no_grad():
        return Latent(*generator.truncated_frequencies(z, psi))


def interpolated_latents(latents, frames_per_seed):
    """frames_per_seed latents from each to the next (the last back to the first), eased so each seed lingers."""
    path = []
    for index, start in enumerate(latents):
        end = latents[(index + 1) % len(latents)]
        for frame in range(frames_per_seed):
            t = (1 - math.cos(math.pi * frame / frames_per_seed)) / 2
            path.append(start.lerp(end, t))
    return path


# A curriculum's *_eval camera keys: what evaluation images draw their views from instead.
EVAL_CAMERA_KEYS = {'h_stddev': 'h_stddev_eval', 'v_stddev': 'v_stddev_eval', 'sample_dist': 'sample_dist_eval'}
CAMERAS = ('fixed', 'eval')


def evaluation_settings(settings, img_size=None, cameras='fixed'):
    """The settings (settings.Settings) of every evaluation and inference render, from a step's.

    The one place they are derived: no density noise; last_back follows eval_last_back where
    the curriculum has it (the original trained faces without it but rendered them with it);
    img_size if given. cameras='fixed': a batch's views sit at the mean camera (sample grids;
    render_view takes its camera explicitly anyway); cameras='eval': views are drawn from the
    curriculum's *_eval distribution where it has one (FID's images). Only rendering and camera change.
    """
    if cameras not in CAMERAS:
        raise ValueError(f"cameras must be one of {CAMERAS}, not {cameras!r}")
    rendering, camera, evaluation = settings.rendering, settings.camera, settings.evaluation
    if cameras == 'fixed':
        camera = replace(camera, h_stddev=0.0, v_stddev=0.0, sample_dist=None)
    else:
        camera = replace(camera, **{key: getattr(evaluation, eval_key) for key, eval_key
                                    in eval_keys_used(settings).items() if key != 'last_back'})
    last_back = rendering.last_back if evaluation.eval_last_back is None else evaluation.eval_last_back
    rendering = replace(rendering, nerf_noise=0.0, last_back=last_back,
                        img_size=rendering.img_size if img_size is None else img_size)
    return replace(settings, rendering=rendering, camera=camera)


def eval_keys_used(settings):
    """{render key: the curriculum's evaluation key that evaluation_settings(cameras='eval') took it from}:
    those the curriculum sets (not None)."""
    keys = {**EVAL_CAMERA_KEYS, 'last_back': 'eval_last_back'}
    return {key: eval_key for key, eval_key in keys.items() if getattr(settings.evaluation, eval_key) is not None}


def view_dependence_locked(rendering, requested=False):
    """Whether colour ignores the view direction: where asked, and always for a generator trained
    so at the checkpoint's stage (rendering: its settings.Rendering; its colour branch saw no other
    direction there)."""
    return bool(requested or rendering.lock_view_dependence)


def inference_rendering(settings, image_size=None, ray_step_multiplier=1, lock_view_dependence=False):
    """The Rendering of inference renders: evaluation_settings' at the mean camera, with the samples
    per ray scaled by ray_step_multiplier and colour locked to the view where asked."""
    rendering = evaluation_settings(settings, image_size).rendering
    return replace(rendering, num_steps=max(2, round(settings.rendering.num_steps * ray_step_multiplier)),
                   lock_view_dependence=view_dependence_locked(settings.rendering, lock_view_dependence))


def front_camera(camera):
    """The camera (Cameras of one) at the mean of a pose distribution (settings.CameraDistribution), with its fov."""
    return Cameras(yaw=camera.h_mean, pitch=camera.v_mean, fov=camera.fov)


def render_view(generator, latent, camera, rendering, max_batch_size, seed=0):
    """One view at camera (Cameras of one): pixels [3, S, S] in [-1, 1] and depth [S, S], on the CPU.

    rendering: settings.Rendering (inference_rendering's); the pose and fov are the camera's.
    Hierarchical sampling and ray jitter draw random numbers; seeding them per
    view makes every render repeatable and keeps videos from flickering.
    """
    pixels, depth = render_views(generator, latent, camera, rendering, max_batch_size, seed)
    return pixels[0], depth[0]


def render_views(generator, latent, cameras, rendering, max_batch_size, seed=0):
    """N views of one latent in one batch, one per camera of cameras (Cameras): pixels [N, 3, S, S] in [-1, 1],
    depth [N, S, S], CPU.

    max_batch_size: points per image per SIREN call. With the same random numbers each view equals
    render_view's; with jitter or hierarchical sampling the draws differ (one stream for the batch).
    """
    torch.manual_seed(seed)
    views = len(cameras)
    with torch.no_grad():
        pixels, depth = generator.render(latent.frequencies.expand(views, -1), latent.phase_shifts.expand(views, -1),
                                         cameras.to(generator.device), rendering, max_batch_size=max_batch_size)
    return pixels.cpu(), depth.cpu()


def render_to_video(generator, frames, rendering, path, fps, max_batch_size, depth_path=None, seed=0):
    """Renders (latent, camera) frames into an mp4, and their depth into another if depth_path is given."""
    with ExitStack() as stack:
        video = stack.enter_context(VideoWriter(path, fps))
        depth_video = stack.enter_context(VideoWriter(depth_path, fps)) if depth_path else None
        for latent, camera in tqdm(frames, desc=f'{path}', unit='frame', leave=False):
            pixels, depth = render_view(generator, latent, camera, rendering, max_batch_size, seed)
            video.append(to_uint8(pixels))
            if depth_video is not None:
                depth_video.append(depth_to_uint8(depth, rendering.ray_start, rendering.ray_end))


# --- camera paths (each a closed loop of num_frames cameras, one Cameras) -----------------
# Each goes around the mean view and fov of a settings.CameraDistribution. Angles are summed as
# Python floats, then rounded to the renderer's float32, as ever.

def front_trajectory(num_frames, camera):
    """A gentle loop around the mean view, zooming out and in, like the original's 'front' video."""
    angles = [2 * math.pi * t for t in np.arange(num_frames) / num_frames]
    return Cameras(yaw=[camera.h_mean + 0.4 * math.sin(angle) for angle in angles],
                   pitch=[camera.v_mean + 0.2 * math.cos(angle) for angle in angles],
                   fov=[camera.fov + 5 + 5 * math.sin(angle) for angle in angles])


def sweep_trajectory(num_frames, camera, amplitude=0.8):
    """Yaw swings +-amplitude radians around the mean and back, at the mean pitch."""
    return Cameras(yaw=[camera.h_mean + amplitude * math.sin(2 * math.pi * t)
                        for t in np.arange(num_frames) / num_frames],
                   pitch=camera.v_mean, fov=camera.fov)


def orbit_trajectory(num_frames, camera):
    """A full turn of yaw at the mean pitch."""
    return Cameras(yaw=[camera.h_mean + 2 * math.pi * t for t in np.arange(num_frames) / num_frames],
                   pitch=camera.v_mean, fov=camera.fov)


TRAJECTORIES = {'front': front_trajectory, 'sweep': sweep_trajectory, 'orbit': orbit_trajectory}


def trajectory(name, num_frames, camera):
    return TRAJECTORIES[name](num_frames, camera)


def yaw_row(camera, offsets=(-0.5, -0.25, 0.0, 0.25, 0.5)):
    """Cameras at the mean pitch, turned by each yaw offset (radians) from the mean."""
    return Cameras(yaw=[camera.h_mean + offset for offset in offsets], pitch=camera.v_mean, fov=camera.fov)


# --- command-line pieces ---------------------------------------------------------------

def add_render_arguments(parser, output_dir, image_size, ray_step_multiplier=1):
    """Options of the scripts that render seeds."""
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3], help="z seeds to render")
    parser.add_argument('--output_dir', default=output_dir, help="folder for the outputs (created)")
    parser.add_argument('--image_size', type=int, default=image_size, help="output resolution")
    parser.add_argument('--ray_step_multiplier', type=float, default=ray_step_multiplier,
                        help="samples per ray = the curriculum's num_steps times this")
    parser.add_argument('--psi', type=float, default=0.7, help="truncation: 1 for none, lower for safer samples")
    parser.add_argument('--lock_view_dependence', action='store_true',
                        help="colour independent of the view direction (steadier across views); always on "
                             "for a generator trained locked")
    parser.add_argument('--depth_map', action='store_true', help="also save depth maps")


def add_video_arguments(parser, trajectory='front', num_frames=48):
    """Options of the scripts that write videos along a camera path."""
    parser.add_argument('--trajectory', choices=sorted(TRAJECTORIES), default=trajectory,
                        help="camera path: front (gentle loop with zoom), sweep (yaw +-0.8 rad), orbit (full turn)")
    parser.add_argument('--num_frames', type=int, default=num_frames, help="frames in the video")
    parser.add_argument('--fps', type=int, default=24, help="frames per second")

