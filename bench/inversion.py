"""The inversion benchmark (metrics/inversion.py) on a generator, as a table, with a picture.

    python bench/inversion.py RUN/generator.pth --num_heads 8 --output_dir runs/inversion
    python bench/inversion.py RUN/generator.pth --inversion_args "--optimize_pose --num_iterations 300"
    python bench/inversion.py RUN/generator.pth --ceiling   # the generator's own samples: its range

Held-out true heads, each photographed once at a random training pose, are inverted with
inverse_render.py's fit (--inversion_args: its options, as a user types them; the image size
defaults to the training resolution) and scored against the true head: pose error, novel
views at yaw offsets of +-0.3 and +-0.5 rad (PSNR, SSIM, silhouette IoU), the two-way surface
distance to that head, seconds per image. Every value is printed beside its floor (a perfect
inversion) and its baselines. --ceiling inverts the generator's own samples instead (their
true views are its renders; no shape): what the fit reaches where the generator can draw the answer.

Writes OUTPUT_DIR/inversion.json (values, per-head scores, settings, load average) and
OUTPUT_DIR/inversion.png: per head, the input, then the true view above the inverted one at
yaw offsets -0.5, -0.3, +0.3, +0.5.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from checkpoints import load_generator  # noqa: E402
from inference.inversion import fit_arguments  # noqa: E402
from metrics import geometry, inversion  # noqa: E402
from metrics.heads import GeneratorHeads, sample_cameras  # noqa: E402
from utils.media import image_grid, save_image, to_uint8  # noqa: E402

POSE_BASELINES = (('_start', 'mean pose'), ('_regressor', 'pose regressor'))
VIEW_BASELINES = (('_copy', 'input copied'), ('_mean', 'mean latent'))
VIEW_VALUES = (('psnr', 'PSNR (dB)'), ('ssim', 'SSIM'), ('iou', 'silhouette IoU'))
ROWS = [  # (label, value, floor, baselines: (suffix, label) ...)
    ('yaw error (deg)', 'inversion_yaw_deg', '_floor', POSE_BASELINES),
    ('pitch error (deg)', 'inversion_pitch_deg', '_floor', POSE_BASELINES),
] + [(f'{label} at +-{offset} rad', f'inversion_{name}_{offset.replace(".", "")}', '_floor', VIEW_BASELINES)
     for offset in ('0.3', '0.5') for name, label in VIEW_VALUES] + [
    ('shape: two-way distance', 'inversion_shape', '_floor_mesh', (('_sphere', 'best sphere'),
                                                                    ('_mean_latent', 'mean latent'))),
]


def table(values):
    """Markdown rows: value, floor and baselines of every value present."""
    lines = ['| measure | inverted | floor | baselines |', '|---|---|---|---|']
    for label, name, floor, baselines in ROWS:
        if name not in values:
            continue
        shown = ', '.join(f'{text} {values[name + suffix]:.4g}' for suffix, text in baselines
                          if name + suffix in values)
        floor_value = f'{values[name + floor]:.4g}' if name + floor in values else '-'
        lines.append(f'| {label} | **{values[name]:.4g}** | {floor_value} | {shown} |')
    lines.append(f"| seconds per image | **{values['inversion_seconds']:.1f}** "
                 f"(max {values['inversion_seconds_max']:.1f}) | - | - |")
    return lines


def picture(details, path, heads=4, scale=3):
    """Per head a row: input, then true above inverted at each yaw offset (nearest-neighbour enlarged)."""
    offsets = sorted(details['views'])
    rows = []
    for index in range(min(heads, len(details['photos']))):
        top = [details['photos'][index]] + [details['views'][o]['truth'][index] for o in offsets]
        bottom = [details['photos'][index]] + [details['views'][o]['inverted'][index] for o in offsets]
        rows += top + bottom
    images = [np.kron(image, np.ones((scale, scale, 1), dtype=np.uint8)) for image in to_uint8(torch.stack(rows))]
    save_image(image_grid(images, columns=len(offsets) + 1), path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('path', help="generator.pth of a run (ema.pth beside it is used unless --no_ema)")
    parser.add_argument('--no_ema', action='store_true')
    parser.add_argument('--dataset_dir', default=None, help="the run's synthetic dataset folder (default: the run's)")
    parser.add_argument('--num_heads', type=int, default=8, help="held-out heads inverted")
    parser.add_argument('--seed', type=int, default=0, help="seed of the cameras")
    parser.add_argument('--inversion_args', default=inversion.DEFAULT_ARGS,
                        help="inverse_render.py's fit options, as typed (default: %(default)s)")
    parser.add_argument('--ceiling', action='store_true', help="invert the generator's own samples instead")
    parser.add_argument('--output_dir', default='inversion_bench', help="folder for inversion.json and inversion.png")
    args = parser.parse_args(argv)
    if args.num_heads < 1:
        parser.error(f"--num_heads must be at least 1, got {args.num_heads}")

    generator, settings = load_generator(args.path, ema=None if args.no_ema else 'ema.pth')
    dataset_dir = geometry.synthetic_folder(settings, args.dataset_dir)
    started = time.perf_counter()
    if args.ceiling:
        fit_args = fit_arguments(['--image_size', str(settings.rendering.img_size)] + args.inversion_args.split())
        heads = GeneratorHeads(generator, settings, first_seed=inversion.HEAD_SEED)
        cameras = sample_cameras(args.num_heads, settings.camera, inversion.HEAD_SEED + args.seed)
        values, details = inversion.benchmark(generator, settings, heads, cameras, fit_args,
                                              geometry.reference(dataset_dir).regressor)
    else:
        values, details = inversion.inversion(generator, settings, dataset_dir, args.num_heads, args.seed,
                                              args.inversion_args)
    load = os.getloadavg()
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    picture(details, output_dir / 'inversion.png')
    record = {'generator': str(Path(args.path).resolve()), 'inversion_args': args.inversion_args,
              'ceiling': args.ceiling, 'num_heads': args.num_heads, 'seed': args.seed, 'values': values,
              'per_head': {'seconds': details['seconds'].tolist(),
                           'shape': details['shape'].tolist() if 'shape' in details else None,
                           'yaw_pitch_true': [[yaw, pitch] for yaw, pitch, _ in details['cameras'].tolist()],
                           'yaw_pitch_found': [f.camera.tolist()[0][:2] for f in details['fits']]},
              'load_average': load, 'torch_threads': torch.get_num_threads(),
              'minutes': (time.perf_counter() - started) / 60}
    (output_dir / 'inversion.json').write_text(json.dumps(record, indent=1) + '\n')
    print('\n'.join(table(values)))
    source = "the generator's own samples" if args.ceiling else 'held-out true heads'
    print(f"{args.num_heads} heads, {source}; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {torch.get_num_threads()} torch threads; "
          f"wrote {output_dir / 'inversion.json'} and {output_dir / 'inversion.png'}")


if __name__ == '__main__':
    main()
