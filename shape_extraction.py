"""Extracts each seed's 3D shape: a density volume (.mrc) and a coloured mesh.

    python shape_extraction.py RUN/generator.pth --seed 0 --output_dir shapes/

Writes seedNNNN.mrc (view it in ChimeraX at a level of about 10) and
seedNNNN.ply (or .obj), the surface at --level coloured by the generator; each
vertex is placed on the generator's own density, not interpolated from the grid
(--refine_steps), so the mesh is smooth at any --voxel_resolution. Only the mesh's
largest connected piece is kept (--keep_parts): floaters and pockets inside go.
With --latent (a latent.pt of inverse_render.py) it extracts that latent
instead, as latent.mrc and latent.ply; after --fit_weights, pass the
generator.pth written beside it.
"""

import argparse
from pathlib import Path

from tqdm import tqdm

from checkpoints import safe_load
from checkpoints.validation import check_latent_file
from inference.arguments import add_generator_arguments, load_generator_from_args
from utils.cli import run_cli
from inference.meshing import density_grid, generator_mesh, save_mesh, save_mrc, vertex_colours
from inference.rendering import Latent, front_camera, latent_from_seed, view_dependence_locked


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_generator_arguments(parser)
    parser.add_argument('--seeds', '--seed', type=int, nargs='+', default=[0], help="z seeds to extract")
    parser.add_argument('--latent', default=None, help="latent.pt of inverse_render.py to extract instead of seeds")
    parser.add_argument('--output_dir', default='shapes', help="folder for the outputs (created)")
    parser.add_argument('--voxel_resolution', type=int, default=256, help="samples per side of the cube")
    parser.add_argument('--cube_size', type=float, default=0.3, help="side of the cube around the origin, world units")
    parser.add_argument('--psi', type=float, default=0.7, help="truncation, as for the rendering scripts")
    parser.add_argument('--level', type=float, default=10, help="density of the mesh's surface")
    parser.add_argument('--refine_steps', type=int, default=8,
                        help="bisections of each vertex's grid edge on the generator's density (0: plain marching "
                             "cubes, which terraces a density that steps within a voxel)")
    parser.add_argument('--keep_parts', type=int, default=1,
                        help="keep the mesh's N largest connected pieces, dropping floaters and pockets inside "
                             "(0: every piece)")
    parser.add_argument('--mesh_format', choices=['ply', 'obj', 'none'], default='ply', help="mesh file type")
    parser.add_argument('--lock_view_dependence', action='store_true',
                        help="colour vertices without view effects (always, for a generator trained locked)")
    args = parser.parse_args(argv)

    generator, settings, _ = load_generator_from_args(args)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if args.latent:
        latents = [('latent', load_fitted_latent(args.latent, generator))]
    else:
        latents = [(f'seed{seed:04d}', latent_from_seed(generator, seed, args.psi)) for seed in args.seeds]
    for name, latent in tqdm(latents, desc='shapes', unit='shape'):
        volume = density_grid(generator, latent, args.voxel_resolution, args.cube_size, args.max_batch_size)
        save_mrc(volume, output_dir / f'{name}.mrc')
        if args.mesh_format == 'none':
            continue
        try:
            vertices, faces, dropped = generator_mesh(generator, latent, volume, args.level, args.cube_size,
                                                      args.max_batch_size, args.refine_steps, args.keep_parts)
        except ValueError as error:
            tqdm.write(f"{name}: no mesh written: {error}")
            continue
        colours = vertex_colours(generator, latent, vertices, front_camera(settings.camera), args.max_batch_size,
                                 view_dependence_locked(settings.rendering, args.lock_view_dependence))
        save_mesh(vertices, faces, colours, output_dir / f'{name}.{args.mesh_format}')
        if dropped:
            tqdm.write(f"{name}: kept the {args.keep_parts} largest piece(s) of the mesh; smaller pieces, "
                       f"{dropped:.1%} of its faces, dropped (--keep_parts 0 keeps them)")
    return output_dir


def load_fitted_latent(path, generator):
    """The W-space latent that inverse_render.py saved in latent.pt."""
    frequencies, phase_shifts = check_latent_file(safe_load(path, 'latent file'), path, generator)
    return Latent(frequencies.to(generator.device), phase_shifts.to(generator.device))


if __name__ == '__main__':
    run_cli(main)
