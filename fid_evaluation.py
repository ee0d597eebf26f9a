"""Real-image folders for FID (the functions, with the original's public names, are in the metrics library).

    python fid_evaluation.py --dataset CelebA --img_size 128 --num_imgs 8000 [--dataset_path GLOB] [--real_dir DIR]

writes the dataset's images at that resolution as lossless PNGs into
EvalImages/<dataset>_real_images_<size> (or DIR), ready for eval_metrics.py
and for `python -m pytorch_fid`.
"""

import argparse
import sys

from metrics.folder_metrics import calculate_fid  # noqa: F401  the original's names, for its users
from metrics.generate import output_images  # noqa: F401
from metrics.real_images import default_real_dir, setup_evaluation  # noqa: F401
from utils.errors import UserError


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write a dataset's real images for FID evaluation.")
    parser.add_argument('--dataset', default='CelebA', help="dataset class in datasets.py")
    parser.add_argument('--img_size', type=int, default=128)
    parser.add_argument('--num_imgs', type=int, default=8000)
    parser.add_argument('--dataset_path', default=None, help="glob or folder of the dataset's images")
    parser.add_argument('--real_dir', default=None, help="default: EvalImages/<dataset>_real_images_<img_size>")
    args = parser.parse_args(argv)
    try:
        real_dir = setup_evaluation(args.dataset, None, args.img_size, args.num_imgs, args.dataset_path,
                                    args.real_dir)
    except (UserError, OSError) as error:  # e.g. a missing dataset path
        sys.exit(f"fid_evaluation.py: error: {error}")
    print(real_dir)


if __name__ == '__main__':
    main()
