"""How much of a generator's shape error the small separate pieces of its meshes carry.

    python bench/shape_pieces.py RUN/generator.pth --dataset_dir data/synthetic_64_white --num_samples 16

A trained generator's density holds, beside the head, small blobs in the air (floaters) and
pockets inside the head that no camera sees. The `shape` metric scores every piece of a
sample's mesh. This script prints, for the metric's own samples and grid, the share of each
mesh's faces outside its largest connected piece, then the metric as it is and again with
each mesh cut to its largest piece (as shape_extraction.py writes it by default). What the
second leaves is the error of the head's own surface.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import eval_metrics  # noqa: E402
from checkpoints import load_generator  # noqa: E402
from inference.meshing import density_grid, extract_mesh, largest_parts  # noqa: E402
from inference.rendering import latent_from_seed  # noqa: E402
from metrics import shape  # noqa: E402
from metrics.heads import DEFAULT_SURFACE_LEVEL  # noqa: E402


def dropped_shares(path, num_samples):
    """[num_samples] share of each metric sample's mesh faces outside its largest piece (psi 1, the metric's grid)."""
    generator, _ = load_generator(path)
    shares = []
    for seed in range(num_samples):
        volume = density_grid(generator, latent_from_seed(generator, seed, 1.0), shape.GRID_RESOLUTION,
                              shape.CUBE_SIZE, progress=False)
        vertices, faces = extract_mesh(volume, DEFAULT_SURFACE_LEVEL, shape.CUBE_SIZE)
        shares.append(largest_parts(vertices, faces, 1)[2])
    return np.array(shares)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('generator', help="generator.pth of a run on the synthetic heads")
    parser.add_argument('--dataset_dir', default='data/synthetic_64_white')
    parser.add_argument('--num_samples', type=int, default=16)
    args = parser.parse_args()
    shares = dropped_shares(args.generator, args.num_samples)
    print(f"faces outside the largest piece, per sample: {' '.join(f'{s:.1%}' for s in shares)} "
          f"(median {np.median(shares):.1%})")
    for keep, label in ((0, 'every piece (the metric)'), (1, 'largest piece only')):
        shape.KEEP_PARTS = keep
        with tempfile.TemporaryDirectory() as folder:
            report = eval_metrics.main([args.generator, '--metrics', 'shape', '--geometry_samples',
                                        str(args.num_samples), '--dataset_dir', args.dataset_dir,
                                        '--output_dir', folder])
        results = report['results']
        print(f"{label:26s} distance {results['shape_distance']:.5f}  accuracy {results['shape_accuracy']:.5f}  "
              f"completeness {results['shape_completeness']:.5f}  coverage {results['shape_coverage']:.3f}")


if __name__ == '__main__':
    main()
