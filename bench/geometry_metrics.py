"""Floors, chance levels and cost of the geometry metrics on a synthetic dataset.

    python bench/geometry_metrics.py --dataset_dir data/synthetic_64 --num_samples 64

Scores three controlled "generators" with every geometry metric and prints the
values with their floor and chance, and the seconds each took:
    true heads     heads of the family the dataset never showed (another seed): a perfect generator
    fixed view     the same heads with an image that does not turn with the camera
    untrained      the demo curriculum's generator at initialisation (the real rendering path)
The table in docs/evaluation.md comes from this script.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import curriculums  # noqa: E402
from checkpoints.builders import build_generator  # noqa: E402
from inference.rendering import front_camera  # noqa: E402
from settings import Settings  # noqa: E402
from metrics import geometry  # noqa: E402
from metrics.heads import TrueHeads  # noqa: E402
from synthetic import heads as synthetic_heads  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--dataset_dir', default='data/synthetic_64', help="synthetic dataset folder")
    parser.add_argument('--num_samples', type=int, default=64)
    parser.add_argument('--curriculum', default='SPATIALSIRENBASELINE', help="camera settings and the generator")
    args = parser.parse_args(argv)

    settings = Settings.at_step(curriculums.get(args.curriculum), 0)
    started = time.perf_counter()
    reference = geometry.reference(args.dataset_dir)
    regressor, _ = reference.regressor, reference.bank  # trained or loaded, and built, once: timed here
    print(f"pose regressor and head bank ready in {time.perf_counter() - started:.1f} s "
          f"(regressor trained in {regressor.training_record['train_seconds']:.0f} s when first made)")

    true_heads = TrueHeads(synthetic_heads.sample_head_params(args.num_samples, np.random.default_rng(123)),
                           settings.camera.fov)
    torch.manual_seed(0)
    untrained = build_generator(settings.networks)
    sources = {'true heads': true_heads, 'fixed view': geometry.FixedView(true_heads, front_camera(settings.camera)),
               'untrained': untrained}
    for label, source in sources.items():
        cache = {}
        for name in geometry.GEOMETRY_METRICS:
            started = time.perf_counter()
            values = geometry.METRIC_FUNCTIONS[name](source, settings, args.dataset_dir, args.num_samples,
                                                     cache=cache)
            print(f"\n{label}: {name} ({time.perf_counter() - started:.1f} s, floors included the first time)")
            print('  ' + '\n  '.join(geometry.summary_lines(values)))


if __name__ == '__main__':
    main()
