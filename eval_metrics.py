"""FID, KID and Inception Score of a trained generator against a folder of real images,
and offline 3D-quality metrics on the synthetic heads.

    python eval_metrics.py path/to/generator.pth --real_image_dir real/ --num_images 8000
    python eval_metrics.py path/to/generator.pth --metrics pose,pose_fd,shape,mv_consistency

The generator renders at the settings it was trained at (EMA weights by default),
with psi 1, no density noise and the curriculum's *_eval camera settings. The
images are kept as PNGs, so `python -m pytorch_fid REAL <output_dir>/images`
reproduces the FID printed here. The geometry metrics (metrics/geometry.py) need no
Inception weights: they use the synthetic dataset's poses and shapes, and print each
value beside its floor (the real data's) and chance level (a trivial generator's).
"""

import argparse
import json
import math
import sys
from pathlib import Path

from metrics import (ImageFolderError, folder_metrics, list_metrics, load_inception, parse_metric_names,
                     split_metrics)
from metrics.geometry import geometry_metrics, summary_lines, synthetic_folder
from metrics.generate import output_images, prepare_output_folder
from inference.rendering import eval_keys_used
from metrics.image_files import image_size, require_images
from inference.arguments import add_generator_arguments, load_generator_from_args
from utils.cli import run_cli
from utils.errors import UserError
from utils.files import atomic_write


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add_generator_arguments(parser)
    parser.add_argument('--real_image_dir', default=None,
                        help="folder of real images (e.g. from fid_evaluation.py); needed by fid, kid and is")
    parser.add_argument('--num_images', type=int, default=8000, help="generated images to evaluate")
    parser.add_argument('--img_size', type=int, default=None, help="render size (default: the real images' size; for mv_consistency, the synthetic dataset's)")
    parser.add_argument('--output_dir', default=None,
                        help="where images, metrics.json and the real-statistics cache go "
                             "(default: <run folder>/evaluation)")
    parser.add_argument('--metrics', default='fid,kid,is', help=f"comma-separated, from {', '.join(list_metrics())}")
    parser.add_argument('--batch_size', type=int, default=4, help="images rendered at once")
    parser.add_argument('--inception_batch_size', type=int, default=50, help="images per Inception batch")
    parser.add_argument('--num_workers', type=int, default=2, help="image-loading processes")
    parser.add_argument('--kid_subsets', type=int, default=100)
    parser.add_argument('--kid_subset_size', type=int, default=1000, help="capped at the number of images")
    parser.add_argument('--is_splits', type=int, default=10)
    parser.add_argument('--seed', type=int, default=0, help="seed of latents, cameras and KID subsets")
    parser.add_argument('--inception_weights', default=None,
                        help="local copy of pt_inception-2015-12-05-6726825d.pth (no download)")
    geometry = parser.add_argument_group('geometry metrics (pose, pose_fd, shape, mv_consistency)')
    geometry.add_argument('--dataset_dir', default=None,
                          help="synthetic dataset folder with poses.json (default: the run's synthetic dataset)")
    geometry.add_argument('--geometry_samples', type=int, default=64, help="generated samples per geometry metric")
    geometry.add_argument('--level', type=float, default=10,
                          help="density of a sample's surface for shape, as shape_extraction.py's --level")
    args = parser.parse_args(argv)
    if args.num_images < 2:
        parser.error("--num_images must be at least 2")
    try:
        args.metrics = parse_metric_names(args.metrics)
    except ValueError as error:
        parser.error(str(error))
    args.image_metrics, args.geometry_metrics = split_metrics(args.metrics)
    if args.image_metrics and not args.real_image_dir:
        parser.error(f"{', '.join(args.image_metrics)} need --real_image_dir")
    if args.geometry_samples < 2:
        parser.error("--geometry_samples must be at least 2")
    return args


def render_size(requested, real_file):
    """--img_size, else the (square) real images' size."""
    width, height = image_size(real_file)
    if requested is None and width != height:
        raise ImageFolderError(f"{real_file} is {width}x{height}, not square; pass --img_size")
    if requested is not None and (requested, requested) != (width, height):
        print(f"WARNING: rendering at {requested} px while the real images are {width}x{height}", file=sys.stderr)
    return requested or width


def summary_line(results, num_images, step):
    parts = []
    if 'fid' in results:
        parts.append(f"FID {results['fid']:.4f}")
    if 'kid' in results:
        parts.append(f"KID {results['kid']:.6f} ± {results['kid_std']:.6f} "
                     f"(x100: {results['kid_x100']:.4f} ± {results['kid_std_x100']:.4f})")
    if 'is' in results:
        parts.append(f"IS {results['is']:.4f} ± {results['is_std']:.4f}")
    return '  '.join(parts) + f"  [{num_images} images, step {step}]"


def evaluate(args):
    if args.image_metrics:
        require_images(args.real_image_dir, 'real-image folder')  # fail before any slow work
    generator, settings, device = load_generator_from_args(args)
    output_dir = Path(args.output_dir) if args.output_dir else Path(args.path).resolve().parent / 'evaluation'
    report = {'checkpoint': str(Path(args.path).resolve()), 'step': int(generator.step), 'results': {},
              'settings': {'ema': None if args.no_ema else args.ema, 'curriculum': args.curriculum,
                           'overrides': args.overrides, 'seed': args.seed}}
    if args.image_metrics:
        image_metrics(args, generator, settings, device, output_dir, report)
    if args.geometry_metrics:
        dataset_dir = synthetic_folder(settings, args.dataset_dir)
        options = {'max_batch_size': args.max_batch_size, 'surface_level': args.level}
        if args.img_size:  # mv_consistency's render size (pose renders at its regressor's input size)
            options['img_size'] = args.img_size
        report['results'].update(geometry_metrics(generator, settings, dataset_dir, args.geometry_metrics,
                                                  args.geometry_samples, args.seed, **options))
        report['geometry'] = {'dataset_dir': str(Path(dataset_dir).resolve()), 'num_samples': args.geometry_samples}
    output_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(output_dir / 'metrics.json', 'w') as file:
        file.write(json.dumps(report, indent=2, default=str) + '\n')
    print(f"wrote {output_dir / 'metrics.json'}", file=sys.stderr)
    return report


def image_metrics(args, generator, settings, device, output_dir, report):
    """FID, KID and IS: renders --num_images into output_dir/images and fills report."""
    real_files = require_images(args.real_image_dir, 'real-image folder')
    img_size = render_size(args.img_size, real_files[0])
    inception = load_inception(device, args.inception_weights)
    images_dir = output_dir / 'images'

    if images_dir.resolve() == Path(args.real_image_dir).resolve():
        raise ImageFolderError(f"{images_dir} is the real-image folder; choose another --output_dir")
    prepare_output_folder(images_dir)
    evaluation = output_images(generator, settings, 0, 1, images_dir, args.num_images, img_size,
                            batch_size=args.batch_size, seed=args.seed, max_batch_size=args.max_batch_size)
    metric_options = {'kid_subsets': args.kid_subsets, 'kid_subset_size': args.kid_subset_size,
                      'is_splits': args.is_splits, 'seed': args.seed}
    results, real = folder_metrics(args.real_image_dir, images_dir, output_dir, inception, args.image_metrics,
                                   metric_options, batch_size=args.inception_batch_size,
                                   num_workers=args.num_workers)

    report.update({
        'num_images': args.num_images,
        'num_real_images': real.num_images,
        'real_image_dir': str(Path(args.real_image_dir).resolve()),
        'generated_image_dir': str(images_dir.resolve()),
        'real_statistics_cache': str(real.cache_file),
    })
    report['results'].update(results)
    report['settings'].update({
        'img_size': img_size, 'psi': 1, 'nerf_noise': 0,
        'eval_keys_used': eval_keys_used(settings),
        'metric_options': metric_options,
        'inception_weights': str(inception.weights_file),
        'inception_weights_sha256': inception.weights_digest,
        # metrics.json: the evaluation's settings as plain keys, with the density noise (not a curriculum key)
        'render_options': {**evaluation.as_metadata(), 'nerf_noise': evaluation.rendering.nerf_noise},
    })


def main(argv=None):
    args = parse_args(argv)
    try:
        report = evaluate(args)
    except UserError as error:
        sys.exit(f"eval_metrics.py: error: {error}")
    bad = [name for name, value in report['results'].items() if not math.isfinite(value)]
    if args.image_metrics:
        print(summary_line(report['results'], report['num_images'], report['step']))
    for line in summary_lines(report['results']):
        print(line)
    if bad:
        print(f"WARNING: non-finite values for {', '.join(bad)}", file=sys.stderr)
    return report


if __name__ == '__main__':
    run_cli(main)  # main reports its own user errors; run_cli adds a full disk
