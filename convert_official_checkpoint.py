"""Converts a checkpoint of the original pi-GAN release to this project's format.

    python convert_official_checkpoint.py ORIGINAL_RUN/generator.pth --curriculum CelebA --output_dir converted/

Reads generator.pth (and ema.pth / ema2.pth beside it) without running any of
their code and writes files that load with torch.load(weights_only=True) and
record the curriculum, so other scripts need no --curriculum afterwards.
"""

import argparse

from checkpoints.official import convert_official_run
from utils.cli import add_override_argument, parse_overrides, run_cli


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('path', help="generator.pth of the original release")
    parser.add_argument('--curriculum', required=True, help="curriculum it was trained with: CelebA, CATS or CARLA")
    parser.add_argument('--output_dir', required=True, help="folder for the converted generator.pth and ema files")
    add_override_argument(parser)
    args = parser.parse_args(argv)
    written = convert_official_run(args.path, args.curriculum, args.output_dir, parse_overrides(args.overrides))
    for path in written:
        print(f"wrote {path}")
    return written


if __name__ == '__main__':
    run_cli(main)
