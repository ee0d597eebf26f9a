"""Terraces on meshes: marching cubes against vertices refined on the density (inference/meshing.py).

    python bench/mesh_terraces.py RUN/generator.pth --seed 0 --output terraces.png

Draws one sample's mesh (front and side) at 64³ and 128³, plain and refined, and a true
synthetic head's sharp density (20 inside, 0 outside) the same way; prints how far the
vertices' density is from the level and what refining costs.
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'bench'))

from synthetic import heads as synthetic_heads  # noqa: E402
from checkpoints import load_generator  # noqa: E402
from convergence import dataset_folder, shaded_mesh  # noqa: E402
from inference.meshing import density_function, extract_mesh, grid_points, refine_vertices  # noqa: E402
from inference.rendering import latent_from_seed  # noqa: E402
from utils.media import image_grid, save_image  # noqa: E402

LEVEL = 10
CUBE_SIZE = 0.3


def views(vertices, faces):
    return [shaded_mesh(vertices, faces, 0.0), shaded_mesh(vertices, faces, math.pi / 2)]


def plain_and_refined(density, resolution, name, error):
    """Pictures [plain front, plain side, refined front, refined side] of density's surface at LEVEL;
    prints the median of error(vertices) [V] -> [V] for both."""
    volume = density(grid_points(resolution, CUBE_SIZE)).reshape((resolution,) * 3).numpy()
    vertices, faces = extract_mesh(volume, LEVEL, CUBE_SIZE)
    start = time.time()
    refined = refine_vertices(vertices, density, LEVEL, CUBE_SIZE, resolution)
    seconds = time.time() - start
    off = [float(error(torch.from_numpy(v)).median()) for v in (vertices, refined)]
    print(f"{name} {resolution}^3: {len(vertices)} vertices; median {error.__doc__} "
          f"{off[0]:.3g} plain, {off[1]:.3g} refined (refining: {seconds:.2f} s)")
    return views(vertices, faces) + views(refined, faces)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('generator')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--output', default='terraces.png')
    args = parser.parse_args(argv)

    generator, settings = load_generator(args.generator)
    latent = latent_from_seed(generator, args.seed, 0.7)
    generated = density_function(generator, latent, 2400000)
    head = json.loads((dataset_folder(settings) / 'poses.json').read_text())['images'][0]['params']

    def sharp(points):  # a true head as a generator's step: 2 x LEVEL inside, 0 outside
        return torch.where(synthetic_heads.head_signed_distance(points, head) < 0, 2.0 * LEVEL, 0.0)

    def off_level(points):
        """|density - level| at the vertices"""
        return (generated(points) - LEVEL).abs()

    def off_surface(points):
        """distance from the vertices to the true surface (world units)"""
        return synthetic_heads.head_signed_distance(points, head).abs()

    rows = [plain_and_refined(generated, resolution, f'seed {args.seed}', off_level) for resolution in (64, 128)]
    rows.append(plain_and_refined(sharp, 64, 'true head, sharp density', off_surface))
    save_image(np.concatenate([image_grid(row, columns=4) for row in rows]), args.output)
    print(f"wrote {args.output}: rows 64³ and 128³ of the sample, then the true head at 64³; "
          f"columns: plain front, plain side, refined front, refined side")


if __name__ == '__main__':
    main()
