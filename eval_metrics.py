"""FID, KID and Inception Score of a trained generator against a folder of real images.

    python eval_metrics.py path/to/generator.pth --real_image_dir real/ --num_images 8000

The generator renders at the settings it was trained at (EMA weights by default),
with psi 1, no density noise and the curriculum's *_eval camera settings. The
images are kept as PNGs, so `python -m pytorch_fid REAL <output_dir>/images`
reproduces the FID printed here.
"""

import argparse
import json
import math
import sys
from pathlib import Path

from metrics import ImageFolderError, InceptionWeightsError, folder_metrics, list_metrics, load_inception
from metrics.generate import evaluation_metadata, prepare_output_folder, write_generated_images
from metrics.image_files import image_size, require_images
from checkpoints import CheckpointError
from inference.arguments import add_generator_arguments, load_generator_from_args


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add_generator_arguments(parser)
    parser.add_argument('--real_image_dir', required=True, help="folder of real images (e.g. from fid_evaluation.py)")
    parser.add_argument('--num_images', type=int, default=8000, help="generated images to evaluate")
    parser.add_argument('--img_size', type=int, default=None, help="render size (default: the real images' size)")
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
    args = parser.parse_args(argv)
    if args.num_images < 2:
        parser.error("--num_images must be at least 2")
    args.metrics = [name.strip() for name in args.metrics.split(',') if name.strip()]
    unknown = [name for name in args.metrics if name not in list_metrics()]
    if unknown:
        parser.error(f"unknown metric {unknown[0]!r}; choose from {', '.join(list_metrics())}")
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
    real_files = require_images(args.real_image_dir, 'real-image folder')  # fail before any slow work
    img_size = render_size(args.img_size, real_files[0])
    generator, metadata, device = load_generator_from_args(args)
    inception = load_inception(device, args.inception_weights)
    output_dir = Path(args.output_dir) if args.output_dir else Path(args.path).resolve().parent / 'evaluation'
    images_dir = output_dir / 'images'

    if images_dir.resolve() == Path(args.real_image_dir).resolve():
        raise ImageFolderError(f"{images_dir} is the real-image folder; choose another --output_dir")
    options, eval_keys = evaluation_metadata(metadata, img_size)
    prepare_output_folder(images_dir)
    write_generated_images(generator, options, images_dir, args.num_images, batch_size=args.batch_size,
                           seed=args.seed, max_batch_size=args.max_batch_size)
    metric_options = {'kid_subsets': args.kid_subsets, 'kid_subset_size': args.kid_subset_size,
                      'is_splits': args.is_splits, 'seed': args.seed}
    results, real = folder_metrics(args.real_image_dir, images_dir, output_dir, inception, args.metrics,
                                   metric_options, batch_size=args.inception_batch_size,
                                   num_workers=args.num_workers)

    report = {
        'checkpoint': str(Path(args.path).resolve()),
        'step': int(generator.step),
        'num_images': args.num_images,
        'num_real_images': real.num_images,
        'real_image_dir': str(Path(args.real_image_dir).resolve()),
        'generated_image_dir': str(images_dir.resolve()),
        'real_statistics_cache': str(real.cache_file),
        'results': results,
        'settings': {
            'img_size': img_size, 'psi': 1, 'nerf_noise': 0,
            'ema': None if args.no_ema else args.ema,
            'curriculum': args.curriculum, 'overrides': args.overrides,
            'eval_keys_used': eval_keys, 'seed': args.seed,
            'metric_options': metric_options,
            'inception_weights': str(inception.weights_file),
            'inception_weights_sha256': inception.weights_digest,
            'render_options': options,
        },
    }
    (output_dir / 'metrics.json').write_text(json.dumps(report, indent=2, default=str) + '\n')
    print(f"wrote {output_dir / 'metrics.json'}", file=sys.stderr)
    return report


def main(argv=None):
    args = parse_args(argv)
    try:
        report = evaluate(args)
    except (CheckpointError, ImageFolderError, InceptionWeightsError) as error:
        sys.exit(f"eval_metrics.py: error: {error}")
    bad = [name for name, value in report['results'].items() if not math.isfinite(value)]
    print(summary_line(report['results'], report['num_images'], report['step']))
    if bad:
        print(f"WARNING: non-finite values for {', '.join(bad)}", file=sys.stderr)
    return report


if __name__ == '__main__':
    main()
