"""How long viewer.py's render callback takes per view, at preview and full sizes.

    python bench/viewer_latency.py RUN/generator.pth --sizes 32 64 128 --iters 5
    python bench/viewer_latency.py ../shared/fixtures/pigan_reference/official_spatialsiren/generator.pth --curriculum CelebA

Each size gets one warm-up render, then --iters renders from cameras a little
apart (as while orbiting); the table shows the median and the fastest, and the
views per second the median allows. The viewer feels interactive while the
preview size stays well under 0.1 s and the full size under a second or two.
"""

import argparse
import math
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inference.arguments import add_generator_arguments, load_generator_from_args  # noqa: E402
from generators.camera_utils import Cameras  # noqa: E402
from inference.viewer import ViewRenderer  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_generator_arguments(parser)
    parser.add_argument('--sizes', type=int, nargs='+', default=[32, 64, 128], help="resolutions to time")
    parser.add_argument('--iters', type=int, default=5, help="timed renders per size")
    parser.add_argument('--ray_step_multiplier', type=float, default=1, help="as the viewer's steps per ray")
    args = parser.parse_args()

    generator, run_settings, device = load_generator_from_args(args)
    renderer = ViewRenderer(generator, run_settings, args.max_batch_size)
    settings = renderer.default_settings(ray_step_multiplier=args.ray_step_multiplier)
    steps = max(2, round(run_settings.rendering.num_steps * args.ray_step_multiplier))
    samples = f"{steps}+{steps}" if run_settings.rendering.hierarchical_sample else f"{steps}"
    print(f"device {device}, threads {torch.get_num_threads()}, samples per ray {samples}")
    print("| size | median s | fastest s | views/s |")
    print("|---|---|---|---|")
    for size in args.sizes:
        cameras = Cameras(yaw=[math.pi / 2 + 0.02 * i for i in range(args.iters + 1)], pitch=math.pi / 2,
                          fov=run_settings.camera.fov)
        seconds = [renderer.render(settings, camera, size).seconds for camera in cameras][1:]
        median = statistics.median(seconds)
        print(f"| {size}² | {median:.3f} | {min(seconds):.3f} | {1 / median:.1f} |")


if __name__ == '__main__':
    main()
