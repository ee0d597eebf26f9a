"""Renders the built-in synthetic 3D head dataset (the heads are synthetic/heads.py).

Command line:
    python synthetic_dataset.py --output_dir data/synthetic_64 --num_images 10000 --img_size 64
"""

import argparse

from synthetic.dataset import DEFAULT_CURRICULUM, METADATA_FILE, default_camera, make_synthetic_dataset
from synthetic.heads import BACKGROUNDS
from utils.cli import run_cli


def main(argv=None):
    parser = argparse.ArgumentParser(description='Synthetic 3D heads with known geometry and poses, so training '
                                                 'runs with no data.')
    parser.add_argument('--output_dir', default='data/synthetic_64')
    parser.add_argument('--num_images', type=int, default=10000)
    parser.add_argument('--img_size', type=int, default=64)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--curriculum', default=DEFAULT_CURRICULUM,
                        help='camera settings (fov, h/v mean and stddev, sample_dist) come from this curriculum')
    parser.add_argument('--supersample', type=int, default=2, help='anti-aliasing: rays per pixel side')
    parser.add_argument('--background', choices=BACKGROUNDS, default='grey',
                        help="'grey': a flat light grey per image; 'white': pure white (train with white_back)")
    args = parser.parse_args(argv)

    make_synthetic_dataset(args.output_dir, args.num_images, args.img_size, args.seed,
                           default_camera(args.curriculum), supersample=args.supersample,
                           background=args.background)
    print(f'wrote {args.num_images} images and {METADATA_FILE} to {args.output_dir}')


if __name__ == '__main__':
    run_cli(main)
