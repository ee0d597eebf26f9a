"""Mesh vertices on the density itself: a density that steps within a voxel gives plain marching
cubes terraces (every vertex at one fraction of its edge); refinement puts them on the surface."""

import numpy as np
import torch
import trimesh

import shape_extraction
from synthetic import heads as synthetic_heads
from checkpoints import load_generator
from inference.meshing import density_function, density_grid, extract_mesh, refine_vertices
from inference.rendering import Latent, latent_from_seed
from tiny_checkpoint import make_tiny_run


def sharp_head_density(head):
    """points [N, 3] -> 20 inside the head, 0 outside: a trained generator's step at the surface."""
    return lambda points: torch.where(synthetic_heads.head_signed_distance(points, head) < 0, 20.0, 0.0)


def test_refined_vertices_lie_on_a_sharp_surface():
    head = synthetic_heads.sample_head_params(1, np.random.default_rng(3))[0]
    resolution, cube_size = 32, 0.24
    axis = torch.linspace(-cube_size / 2, cube_size / 2, resolution)
    z, y, x = torch.meshgrid(axis, axis, axis, indexing='ij')
    density = sharp_head_density(head)
    volume = density(torch.stack([x, y, z], -1).reshape(-1, 3)).reshape((resolution,) * 3).numpy()
    vertices, faces = extract_mesh(volume, 10, cube_size)
    voxel = cube_size / (resolution - 1)

    def off_surface(points):
        return synthetic_heads.head_signed_distance(torch.from_numpy(points), head).abs()

    plain = off_surface(vertices)
    refined = off_surface(refine_vertices(vertices, density, 10, cube_size, resolution, steps=8))
    assert plain.median() > voxel / 10  # the terraces: vertices at edge midpoints
    assert refined.max() < voxel / 100, (refined.max(), voxel)
    assert trimesh.Trimesh(refine_vertices(vertices, density, 10, cube_size, resolution), faces,
                           process=False).volume > 0  # faces still wind outwards


def test_shape_extraction_puts_vertices_on_the_generators_level(tmp_path):
    run = make_tiny_run(tmp_path)
    generator, _ = load_generator(run)
    # A fresh SIREN's density is chaotic below float precision (its FiLM frequencies compound
    # over layers); FiLM frequencies of 30 give a smooth field, as a trained generator has.
    latent = latent_from_seed(generator, 0, 0.7)
    latent = Latent(torch.zeros_like(latent.frequencies), latent.phase_shifts)  # x 15 + 30: 30 in every layer
    torch.save({'frequencies': latent.frequencies, 'phase_shifts': latent.phase_shifts}, tmp_path / 'latent.pt')
    volume = density_grid(generator, latent, 12, 0.3, 500, progress=False)
    level = float(volume.min() + volume.max()) / 2
    density = density_function(generator, latent, 500)
    errors = {}
    for steps in (0, 8):
        folder = tmp_path / f'steps{steps}'
        shape_extraction.main([str(run), '--latent', str(tmp_path / 'latent.pt'), '--voxel_resolution', '12',
                               '--level', str(level), '--refine_steps', str(steps), '--output_dir', str(folder)])
        vertices = np.asarray(trimesh.load(folder / 'latent.ply', process=False).vertices, np.float32)
        errors[steps] = float((density(torch.from_numpy(vertices)) - level).abs().median())
    assert errors[8] < errors[0] / 20, errors
