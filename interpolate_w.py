"""Morphs between seeds in W space while the camera moves: one looping video.

    python interpolate_w.py RUN/generator.pth --seeds 0 1 2 3 --output_dir interpolation/

W is the mapping network's output (frequencies and phase shifts), truncated by
--psi. The video goes seed to seed in order and back to the first, so it loops.
Writes interpolation.mp4 (and interpolation_depth.mp4 with --depth_map).
"""

import argparse
from pathlib import Path

from inference.arguments import add_generator_arguments, load_generator_from_args
from utils.cli import run_cli
from inference.rendering import (add_render_arguments, add_video_arguments, inference_rendering,
                                   interpolated_latents, latent_from_seed, render_to_video,
                                   trajectory)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_generator_arguments(parser)
    add_render_arguments(parser, output_dir='interpolation', image_size=128)
    add_video_arguments(parser, num_frames=None)
    parser.add_argument('--frames_per_seed', type=int, default=24,
                        help="frames from one seed to the next (--num_frames, if given, sets the total instead)")
    args = parser.parse_args(argv)
    frames_per_seed = max(1, round(args.num_frames / len(args.seeds))) if args.num_frames else args.frames_per_seed

    generator, settings, _ = load_generator_from_args(args)
    rendering = inference_rendering(settings, args.image_size, args.ray_step_multiplier, args.lock_view_dependence)
    latents = interpolated_latents([latent_from_seed(generator, seed, args.psi) for seed in args.seeds],
                                   frames_per_seed)
    cameras = trajectory(args.trajectory, len(latents), settings.camera)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    depth_path = output_dir / 'interpolation_depth.mp4' if args.depth_map else None
    render_to_video(generator, list(zip(latents, cameras)), rendering, output_dir / 'interpolation.mp4', args.fps,
                    args.max_batch_size, depth_path, seed=args.seeds[0])
    return output_dir


if __name__ == '__main__':
    run_cli(main)
