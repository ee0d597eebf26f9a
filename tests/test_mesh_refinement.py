"""Mesh vertices on the density itself: a density that steps within a voxel gives plain marching
cubes terraces (every vertex at one fraction of its edge); refinement puts them on the surface."""

import numpy as np
import torch
import trimesh

import shape_extraction
from synthetic import heads as synthetic_heads
from checkpoints import load_generator
from inference.meshing import (density_function, density_grid, extract_mesh, grid_points, largest_parts,
                               refine_vertices)
from inference.rendering import Latent, latent_from_seed
from tiny_checkpoint import make_tiny_run


def sharp_head_density(head):
    """points [N, 3] -> 20 inside the head, 0 outside: a trained generator's step at the surface."""
    return lambda points: torch.where(synthetic_heads.head_signed_distance(points, head) < 0, 20.0, 0.0)


def test_refined_vertices_lie_on_a_sharp_surface():
    head = synthetic_heads.sample_head_params(1, np.random.default_rng(3))[0]
    resolution, cube_size = 32, 0.24
    density = sharp_head_density(head)
    volume = density(grid_points(resolution, cube_size)).reshape((resolution,) * 3).numpy()
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


def test_largest_parts_keeps_the_head_and_drops_floaters_and_pockets():
    head = synthetic_heads.sample_head_params(1, np.random.default_rng(3))[0]
    resolution, cube_size = 48, 0.24
    points = grid_points(resolution, cube_size)
    head_only = sharp_head_density(head)(points)
    # A floater in a corner, a smaller one in another, and a hollow pocket in the middle of the head.
    blobs = ((torch.tensor([0.1, 0.1, 0.1]), 0.012, 20.0), (torch.tensor([-0.1, 0.1, -0.1]), 0.008, 20.0),
             (torch.zeros(3), 0.015, -20.0))
    density = head_only.clone()
    for centre, radius, value in blobs:
        density = torch.where((points - centre).norm(dim=-1) < radius, value, density)
    head_vertices, head_faces = extract_mesh(head_only.reshape((resolution,) * 3).numpy(), 10, cube_size)
    vertices, faces = extract_mesh(density.reshape((resolution,) * 3).numpy(), 10, cube_size)
    assert len(trimesh.Trimesh(vertices, faces, process=False).split(only_watertight=False)) == 4

    kept, kept_faces, dropped = largest_parts(vertices, faces, keep=1)
    assert len(kept_faces) == len(head_faces) and 0 < dropped < 0.2
    assert kept_faces.max() == len(kept) - 1  # faces re-indexed into the kept vertices
    assert synthetic_heads.head_signed_distance(torch.from_numpy(kept[kept_faces].reshape(-1, 3)),
                                                head).abs().max() < cube_size / resolution
    assert trimesh.Trimesh(kept, kept_faces, process=False).volume > 0  # still a closed, outward surface
    two, two_faces, _ = largest_parts(vertices, faces, keep=2)
    assert len(trimesh.Trimesh(two, two_faces, process=False).split(only_watertight=False)) == 2
    # The pocket (radius 0.015) is the second largest piece, not the floaters (0.012 and 0.008) in the corners.
    assert (np.linalg.norm(two, axis=1) < 0.02).any() and not (np.abs(two) > 0.08).all(1).any()
    everything = largest_parts(vertices, faces, keep=0)
    assert len(everything[1]) == len(faces) and everything[2] == 0


def test_shape_extraction_keeps_the_largest_piece_unless_told(tmp_path, capsys):
    run = make_tiny_run(tmp_path)
    generator, _ = load_generator(run)
    volume = density_grid(generator, latent_from_seed(generator, 1, 0.7), 12, 0.3, 500, progress=False)
    level = float(np.quantile(volume, 0.3))  # a fresh SIREN's field: one large surface and many small ones
    meshes = {}
    for keep in ('0', '1', None):
        folder = tmp_path / f'keep{keep}'
        shape_extraction.main([str(run), '--seed', '1', '--voxel_resolution', '12', '--level', str(level),
                               '--output_dir', str(folder), *(['--keep_parts', keep] if keep else [])])
        meshes[keep] = trimesh.load(folder / 'seed0001.ply', process=False)
    pieces = {keep: np.bincount(trimesh.graph.connected_component_labels(mesh.face_adjacency,
                                                                          node_count=len(mesh.faces)))
              for keep, mesh in meshes.items()}
    assert len(pieces['0']) > 10
    for keep in ('1', None):  # one piece by default: the largest
        assert len(pieces[keep]) == 1 and pieces[keep][0] == pieces['0'].max()
    dropped = 1 - pieces['0'].max() / len(meshes['0'].faces)
    assert f"{dropped:.1%} of its faces, dropped" in capsys.readouterr().out
