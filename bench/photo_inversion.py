"""A real portrait to a 3D head, as a user does it: inverse_render.py --align, then shape_extraction.py --latent,
then one picture of the result.

    python bench/photo_inversion.py RUN/generator.pth --output_dir runs/photo_inversion
    python bench/photo_inversion.py RUN/generator.pth --photo me.jpg --inversion_args "--num_iterations 300"

The photo defaults to scikit-image's astronaut (Eileen Collins, NASA, public domain). Writes into --output_dir
everything the two scripts write (aligned.png, reconstruction.png, novel_views.png, video.mp4, latent.pt,
latent.ply, latent.mrc) and summary.png: the photo, its aligned crop, the fit, five turned views, and the mesh
from the front and from the side.
"""

import argparse
import math
import shlex
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import inverse_render  # noqa: E402
import shape_extraction  # noqa: E402
from bench.convergence import shaded_mesh  # noqa: E402
from utils.media import image_grid  # noqa: E402

SIDE = 128  # pixels of each tile of the summary


def tile(path_or_image):
    image = path_or_image if isinstance(path_or_image, Image.Image) else Image.open(path_or_image)
    return np.asarray(image.convert('RGB').resize((SIDE, SIDE), Image.LANCZOS))


def summary(photo, folder):
    """[2 rows of SIDE px tiles]: photo, aligned, fit, mesh front and side; then the five novel views."""
    import trimesh
    mesh = trimesh.load(folder / 'latent.ply', process=False)
    vertices, faces = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    novel = Image.open(folder / 'novel_views.png').convert('RGB')
    views = [novel.crop((index * novel.height, 0, (index + 1) * novel.height, novel.height))
             for index in range(novel.width // novel.height)]
    top = [tile(photo), tile(folder / 'aligned.png'), tile(folder / 'reconstruction.png'),
           shaded_mesh(vertices, faces, 0.0, SIDE), shaded_mesh(vertices, faces, math.pi / 3, SIDE)]
    bottom = [tile(view) for view in views][:5]
    return image_grid(top + bottom + [np.full_like(top[0], 255)] * (len(top) - len(bottom)), columns=len(top))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('generator', help="generator.pth of a run")
    parser.add_argument('--photo', default=None, help="an unaligned photo with one face (default: the astronaut)")
    parser.add_argument('--output_dir', default='runs/photo_inversion')
    parser.add_argument('--inversion_args', default='', help="more inverse_render.py options, as typed")
    parser.add_argument('--voxel_resolution', type=int, default=128)
    args = parser.parse_args()
    folder = Path(args.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    photo = args.photo
    if photo is None:
        from skimage import data
        photo = folder / 'astronaut.png'
        Image.fromarray(data.astronaut()).save(photo)
    inverse_render.main([args.generator, str(photo), '--align', '--optimize_pose', '--output_dir', str(folder),
                         *shlex.split(args.inversion_args)])
    shape_extraction.main([args.generator, '--latent', str(folder / 'latent.pt'), '--output_dir', str(folder),
                           '--voxel_resolution', str(args.voxel_resolution)])
    Image.fromarray(summary(Image.open(photo), folder)).save(folder / 'summary.png')
    print(f"wrote {folder / 'summary.png'}")


if __name__ == '__main__':
    main()
