"""What the geometry metrics measure: a source of heads that can be rendered at any camera.

A head source numbers its samples 0, 1, 2, ... and offers two things:

    render(indices, cameras, img_size) -> pixels [B, 3, S, S] in [-1, 1], depth [B, S, S]
        sample indices[i] seen from cameras[i] (cameras: generators.camera_utils.Cameras); depth is the
        distance along each ray, as the generator's renderer reports it.
    surface_volume(index, resolution, cube_size) -> (volume [z, y, x] float32, level)
        a field on a grid over a cube around the origin (inference.meshing's layout) that is
        above `level` inside the head and below it outside.

GeneratorHeads wraps a pi-GAN generator. TrueHeads renders the synthetic dataset's own
heads with their closed-form geometry, which gives the metrics' floors; OccupancyHeads
are the same heads as a sharp density, the floor of the mesh path. SphereHeads is the
trivial shape behind the shape metric's chance level.
"""

from dataclasses import replace

import numpy as np
import torch

from inference.meshing import density_grid, grid_points
from generators.camera_utils import Cameras
from inference.rendering import inference_rendering, latent_from_seed, render_view
from synthetic import dataset as synthetic_files
from synthetic import heads as synthetic_heads

DEFAULT_SURFACE_LEVEL = 10  # density of the surface, as shape_extraction.py's --level


class GeneratorHeads:
    """Samples of a pi-GAN generator: sample i is the latent of seed first_seed + i, or latents[i] where
    latents (inference.rendering.Latent) are given (fitted ones: metrics/inversion.py)."""

    def __init__(self, generator, settings, psi=1.0, first_seed=0, max_batch_size=2400000,
                 surface_level=DEFAULT_SURFACE_LEVEL, latents=()):
        self.generator = getattr(generator, 'module', generator)  # DDP: render without its hooks
        self.rendering = inference_rendering(settings)
        self.psi = psi
        self.first_seed = first_seed
        self.max_batch_size = max_batch_size
        self.surface_level = surface_level
        self._latents = dict(enumerate(latents))

    def latent(self, index):
        if index not in self._latents:
            self._latents[index] = latent_from_seed(self.generator, self.first_seed + index, self.psi)
        return self._latents[index]

    def render(self, indices, cameras, img_size):
        rendering = replace(self.rendering, img_size=img_size)
        views = [render_view(self.generator, self.latent(index), camera, rendering, self.max_batch_size, seed=index)
                 for index, camera in zip(indices, cameras)]
        return torch.stack([p for p, _ in views]), torch.stack([d for _, d in views])

    def surface_volume(self, index, resolution, cube_size):
        volume = density_grid(self.generator, self.latent(index), resolution, cube_size, self.max_batch_size,
                              progress=False)  # one bar per sample would flood training logs
        return volume, self.surface_level


class TrueHeads:
    """Heads of the synthetic family (synthetic_heads.sample_head_params dicts), ray traced.

    Images are antialiased as the dataset's (supersample 2); depth is traced through the
    pixel centres (the generator's rays), so it is exact wherever a pixel centre hits the head.
    """

    def __init__(self, heads, fov):
        self.heads = list(heads)
        self.fov = fov

    def __len__(self):
        return len(self.heads)

    def render(self, indices, cameras, img_size):
        heads = [self.heads[i] for i in indices]
        images = synthetic_heads.render_heads(heads, cameras.pitch, cameras.yaw, img_size, self.fov)
        _, buffers = synthetic_heads.render_heads(heads, cameras.pitch, cameras.yaw, img_size, self.fov,
                                                  supersample=1, return_buffers=True)
        return images * 2 - 1, buffers['depth']

    def surface_volume(self, index, resolution, cube_size):
        return -signed_distance_grid(lambda p: synthetic_heads.head_signed_distance(p, self.heads[index]),
                                     resolution, cube_size), 0.0


class OccupancyHeads(TrueHeads):
    """True heads whose surface_volume is a sharp density, 2 x level inside the surface and 0
    outside, as a generator whose density jumps at the surface has it: marching cubes puts
    every vertex at an edge's midpoint, so the mesh carries the grid's terraces and nothing else."""

    def surface_volume(self, index, resolution, cube_size):
        inside, _ = super().surface_volume(index, resolution, cube_size)  # > 0 inside
        return np.where(inside > 0, 2 * DEFAULT_SURFACE_LEVEL, 0).astype(np.float32), DEFAULT_SURFACE_LEVEL


class SphereHeads:
    """Every sample is the same sphere of `radius` around the origin (shape only; it does not render)."""

    def __init__(self, radius):
        self.radius = radius

    def surface_volume(self, index, resolution, cube_size):
        return -signed_distance_grid(lambda p: p.norm(dim=-1) - self.radius, resolution, cube_size), 0.0


def signed_distance_grid(signed_distance, resolution, cube_size):
    """signed_distance(points [N, 3]) -> [N], sampled on the grid as float32 [z, y, x]."""
    values = signed_distance(grid_points(resolution, cube_size))
    return values.reshape(resolution, resolution, resolution).numpy().astype(np.float32)


def sample_cameras(num, camera, seed):
    """Cameras, num of them, drawn from a training pose distribution (settings.CameraDistribution), on their
    own RNG stream."""
    pitch, yaw = synthetic_files.sample_poses(num, seed, camera.h_mean, camera.v_mean, camera.h_stddev,
                                              camera.v_stddev, camera.sample_dist)
    return Cameras(yaw=yaw, pitch=pitch, fov=camera.fov)

