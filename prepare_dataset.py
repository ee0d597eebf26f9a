"""Prepares a folder of photos for training: finds, aligns and crops the faces, estimates the camera distribution.

    python prepare_dataset.py PHOTOS/ data/myfaces
    python prepare_dataset.py CAT_PHOTOS/ data/mycats --mode center

Writes into the output folder: images/ (one PNG per accepted photo, --size square,
and images/dataset.json: each image's camera as an EG3D label), dataset.json (each
image's source, crop box and pose; the fitted camera distribution; every rejected
or skipped file and why), pose_histogram.png, and
progress.jsonl (for resuming: run the same command again). Prints the train.py
command with the fitted camera settings and a batch the set can fill, for this
machine: CelebA (64x64) with a GPU, CelebA_CPU (32x32) without (--train_on).

--mode faces (default) detects the face (MTCNN, offline), levels the eyes, frames it
as aligned CelebA is framed for the CelebA curriculum, and estimates yaw and pitch.
A photo is rejected when it cannot be read, is too small for the detector, has
no face, has several faces of similar size, its face is smaller than
--min_face_size, or more of its crop than --max_pad lies outside the photo.
--mode center (cats, cars, anything else) takes the centred square of each photo:
no detection, no alignment, no pose, no camera fit; only unreadable files are rejected.
"""

import argparse
import os

from preprocessing.photos import MODES, Settings
from preprocessing.prepare import prepare_dataset
from utils.cli import run_cli

DEFAULTS = Settings()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('input_dir', help="folder of photos (searched recursively)")
    parser.add_argument('output_dir', help="folder to write the prepared dataset to (created; resumed if present)")
    parser.add_argument('--mode', choices=MODES, default=DEFAULTS.mode,
                        help="faces: align faces and estimate poses; center: centre-crop only (cats, cars)")
    parser.add_argument('--size', type=int, default=DEFAULTS.size, help="side of the written images, pixels")
    parser.add_argument('--min_face_size', type=int, default=DEFAULTS.min_face_size,
                        help="reject faces whose crop is smaller than this in the photo, pixels "
                             "(the crop is about 3.7 eye distances wide)")
    parser.add_argument('--max_pad', type=float, default=DEFAULTS.max_pad,
                        help="reject faces whose crop has more than this fraction of its area outside the photo "
                             "(filled with the photo's blurred edge)")
    parser.add_argument('--min_score', type=float, default=DEFAULTS.min_score,
                        help="detector confidence a face needs to count")
    parser.add_argument('--max_side', type=int, default=DEFAULTS.max_side,
                        help="photos are read at this long side at most (larger ones are reduced first)")
    parser.add_argument('--workers', type=int, default=min(4, os.cpu_count() or 1),
                        help="CPU worker processes (0: in this process)")
    parser.add_argument('--flip', action=argparse.BooleanOptionalAction, default=True,
                        help="train with random horizontal flips (the CelebA curriculum's); the fit then "
                             "counts every yaw mirrored too")
    parser.add_argument('--curriculum', default=None,
                        help="curriculum for the printed command (default: faces CelebA with a GPU, CelebA_CPU "
                             "without; center CATS)")
    parser.add_argument('--train_on', choices=('auto', 'gpu', 'cpu'), default='auto',
                        help="the machine the printed command is for (auto: this one)")
    parser.add_argument('--train_output_dir', default=None, help="--output_dir of the printed train.py command")
    args = parser.parse_args(argv)
    for name in ('size', 'max_side'):
        if getattr(args, name) < 8:
            parser.error(f'--{name} must be at least 8 pixels')
    if not 0 <= args.max_pad <= 1:
        parser.error('--max_pad is a fraction of the crop: from 0 to 1')
    settings = Settings(mode=args.mode, size=args.size, min_face_size=args.min_face_size, min_score=args.min_score,
                        max_side=args.max_side, max_pad=args.max_pad)
    gpu = {'auto': None, 'gpu': True, 'cpu': False}[args.train_on]
    return prepare_dataset(args.input_dir, args.output_dir, settings, args.workers, args.flip, args.curriculum,
                           args.train_output_dir, gpu)


if __name__ == '__main__':
    run_cli(main)
