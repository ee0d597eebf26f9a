"""What the interactive viewer shows and saves, without the browser.

The browser's orbit camera is mapped onto π-GAN's camera (Cameras): the direction
from the origin gives yaw and pitch on the unit sphere, and the distance, since the
renderer's radius is fixed at 1, becomes a field of view (closer = narrower).
A ViewRenderer turns settings and a camera into the image on screen and the
files of the export buttons, through inference.rendering and inference.meshing.
"""

import math
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from generators.camera_utils import Cameras, camera_origins
from generators.ray_sampler import camera_ray_directions
from inference.meshing import density_grid, generator_mesh, save_mesh, vertex_colours
from inference.rendering import (inference_rendering, latent_from_seed, render_to_video, render_view, trajectory,
                                 view_dependence_locked)
from utils.media import depth_to_uint8, save_image, to_uint8

DISPLAYS = ('RGB', 'depth', 'normals')


@dataclass(frozen=True)
class ViewSettings:
    """Everything in the side panel that changes the picture."""
    seed: int = 0
    psi: float = 0.7
    fov: float = 12.0                 # degrees, at the renderer's distance 1
    ray_step_multiplier: float = 1.0
    lock_view_dependence: bool = False
    display: str = 'RGB'
    seed_b: int = 1                   # W-space interpolation from seed towards seed_b ...
    mix: float = 0.0                  # ... by this much (0: seed alone)

    def name(self):
        """File-name stem of what is shown: seed0003, or seed0003-0007_mix0.50."""
        if self.mix == 0:
            return f'seed{self.seed:04d}'
        return f'seed{self.seed:04d}-{self.seed_b:04d}_mix{self.mix:.2f}'


# --- browser camera <-> π-GAN camera -------------------------------------------------

def camera_from_position(position, fov):
    """π-GAN camera (Cameras of one) for a browser camera at position [3] looking at the origin.

    fov is the panel's field of view at distance 1; at distance d the same image
    plane half-width d * tan(fov / 2) is seen from distance 1.
    """
    x, y, z = (float(v) for v in position)
    distance = math.sqrt(x * x + y * y + z * z)
    pitch = math.acos(min(1.0, max(-1.0, y / distance)))
    pitch = min(max(pitch, 1e-5), math.pi - 1e-5)  # as sample_camera_angles clamps it
    yaw = math.atan2(z, x)
    zoomed_fov = math.degrees(2 * math.atan(distance * math.tan(math.radians(fov) / 2)))
    return Cameras(yaw=yaw, pitch=pitch, fov=zoomed_fov)


def position_from_camera(camera, distance=1.0):
    """The point [3] on the sphere of radius distance where π-GAN puts camera (Cameras of one)."""
    return camera_origins(camera.pitch[:, None].double(), camera.yaw[:, None].double(), distance)[0].numpy()


def camera_from_browser(position, fov, placed=None):
    """camera_from_position, exact where the browser still sits where the viewer placed it at
    camera `placed` (the browser reports its position back only to float precision), so a saved
    front view equals the render scripts' front view bit for bit."""
    if placed is not None and np.allclose(position, position_from_camera(placed), rtol=0, atol=1e-6):
        return Cameras(yaw=placed.yaw, pitch=placed.pitch, fov=fov)
    return camera_from_position(position, fov)


# --- pictures ----------------------------------------------------------------------

def normal_map(depth, fov):
    """uint8 [S, S, 3]: camera-space surface normals from depth along the rays [S, S], as (n + 1) / 2.

    Normals face the camera (+z); left-right is x, up-down is y.
    """
    size = depth.shape[-1]
    directions = camera_ray_directions(fov, (size, size)).reshape(size, size, 3)
    points = directions * depth.float()[..., None]
    down, right = torch.gradient(points, dim=(0, 1))  # rows run downwards in the image
    normals = torch.nn.functional.normalize(torch.linalg.cross(down, right), dim=-1)
    return ((normals + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()


def display_image(pixels, depth, display, rendering, fov):
    """The uint8 [S, S, 3] picture of one render (settings.Rendering) in the chosen display."""
    if display == 'RGB':
        return to_uint8(pixels)
    if display == 'depth':
        return depth_to_uint8(depth, rendering.ray_start, rendering.ray_end)
    if display == 'normals':
        return normal_map(depth, fov)
    raise ValueError(f"unknown display {display!r}; choose one of {DISPLAYS}")


def fit_to_canvas(image, width, height, min_side=512):
    """image [S, S, 3] enlarged (whole pixels, nearest) to at least min_side and centred in an
    [H', W', 3] array with the canvas's aspect width / height, padded white.

    The browser stretches the background over its whole canvas: padding keeps pixels square,
    and enlarging first keeps the padding, a whole number of pixels, from bending the aspect.
    Returns (fitted, left, top, scale): where the image starts and how many pixels a pixel became.
    """
    scale = max(1, math.ceil(min_side / image.shape[0]))
    image = image.repeat(scale, axis=0).repeat(scale, axis=1)
    size = image.shape[0]
    fitted_width = max(size, round(size * width / height))
    fitted_height = max(size, round(size * height / width))
    left, top = (fitted_width - size) // 2, (fitted_height - size) // 2
    fitted = np.full((fitted_height, fitted_width, 3), 255, dtype=np.uint8)
    fitted[top:top + size, left:left + size] = image
    return fitted, left, top, scale


class Frame(NamedTuple):
    image: np.ndarray   # uint8 [S, S, 3] as displayed
    seconds: float      # render time
    size: int


# --- the render callback -------------------------------------------------------------

class ViewRenderer:
    """Renders views of one generator for any number of browser tabs.

    run_settings: the settings.Settings the generator was loaded with (checkpoints.load_generator's);
    the panel's ViewSettings are called settings below. One lock serialises the generator: render_view
    seeds the global RNG, so two renders at once would not be repeatable (and would only share the cores).
    """

    def __init__(self, generator, run_settings, max_batch_size=2400000):
        self.generator = generator
        self.run_settings = run_settings
        self.max_batch_size = max_batch_size
        self.lock = threading.Lock()

    def default_settings(self, **changes):
        settings = ViewSettings(fov=float(self.run_settings.camera.fov),
                                lock_view_dependence=view_dependence_locked(self.run_settings.rendering))
        return replace(settings, **changes)

    def latent(self, settings):
        """W-space latent of the settings: seed's, or interpolated towards seed_b."""
        latent = latent_from_seed(self.generator, settings.seed, settings.psi)
        if settings.mix:
            latent = latent.lerp(latent_from_seed(self.generator, settings.seed_b, settings.psi), settings.mix)
        return latent

    def rendering(self, settings, image_size):
        return inference_rendering(self.run_settings, image_size, settings.ray_step_multiplier,
                                   settings.lock_view_dependence)

    def render(self, settings, camera, image_size):
        """Frame of the view from camera, in settings.display, image_size pixels square."""
        rendering = self.rendering(settings, image_size)
        with self.lock:
            start = time.perf_counter()
            pixels, depth = render_view(self.generator, self.latent(settings), camera, rendering,
                                        self.max_batch_size, settings.seed)
            image = display_image(pixels, depth, settings.display, rendering, float(camera.fov))
            seconds = time.perf_counter() - start
        return Frame(image, seconds, image_size)

    # --- export buttons: each writes one file and returns its path ---

    def save_png(self, settings, camera, image_size, output_dir):
        frame = self.render(settings, camera, image_size)
        suffix = '' if settings.display == 'RGB' else f'_{settings.display}'
        path = next_free(Path(output_dir), f'{settings.name()}{suffix}', '.png')
        save_image(frame.image, path)
        return path

    def save_turntable(self, settings, camera, image_size, output_dir, num_frames=48, fps=24):
        """A full turn of yaw from the current view, at its pitch and zoom (RGB)."""
        rendering = self.rendering(settings, image_size)
        start = replace(self.run_settings.camera, h_mean=float(camera.yaw), v_mean=float(camera.pitch),
                        fov=float(camera.fov))
        path = next_free(Path(output_dir), f'{settings.name()}_turntable', '.mp4')
        with self.lock:
            latent = self.latent(settings)
            frames = [(latent, view) for view in trajectory('orbit', num_frames, start)]
            render_to_video(self.generator, frames, rendering, path, fps, self.max_batch_size, seed=settings.seed)
        return path

    def save_mesh(self, settings, camera, output_dir, voxel_resolution=128, level=10.0, cube_size=0.3):
        """The surface at level, coloured as seen from camera. Raises ValueError if there is none."""
        with self.lock:
            latent = self.latent(settings)
            volume = density_grid(self.generator, latent, voxel_resolution, cube_size, self.max_batch_size)
            vertices, faces, _ = generator_mesh(self.generator, latent, volume, level, cube_size, self.max_batch_size,
                                                keep_parts=1)
            colours = vertex_colours(self.generator, latent, vertices, camera, self.max_batch_size,
                                     view_dependence_locked(self.run_settings.rendering, settings.lock_view_dependence))
        path = next_free(Path(output_dir), f'{settings.name()}_mesh', '.ply')
        save_mesh(vertices, faces, colours, path)
        return path


def next_free(folder, stem, suffix):
    """folder/stem_NNN.suffix with the first number not taken, so saves never overwrite."""
    for number in range(100000):
        path = folder / f'{stem}_{number:03d}{suffix}'
        if not path.exists():
            return path
    raise FileExistsError(f"{folder} already holds 100000 files named {stem}_*{suffix}")
