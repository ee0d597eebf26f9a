"""Renders one video per seed along a camera path (H.264 mp4 that plays anywhere).

    python render_video.py RUN/generator.pth --seeds 0 1 --trajectory front --output_dir videos/

Writes seedNNNN.mp4 (and seedNNNN_depth.mp4 with --depth_map) into --output_dir.
"""

import argparse
from pathlib import Path

from tqdm import tqdm

from inference.arguments import add_generator_arguments, load_generator_from_args
from utils.cli import run_cli
from inference.rendering import (add_render_arguments, add_video_arguments, inference_rendering, latent_from_seed,
                                   render_to_video, trajectory)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_generator_arguments(parser)
    add_render_arguments(parser, output_dir='videos', image_size=128)
    add_video_arguments(parser)
    args = parser.parse_args(argv)

    generator, settings, _ = load_generator_from_args(args)
    rendering = inference_rendering(settings, args.image_size, args.ray_step_multiplier, args.lock_view_dependence)
    cameras = trajectory(args.trajectory, args.num_frames, settings.camera)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for seed in tqdm(args.seeds, desc='seeds', unit='seed'):
        latent = latent_from_seed(generator, seed, args.psi)
        depth_path = output_dir / f'seed{seed:04d}_depth.mp4' if args.depth_map else None
        render_to_video(generator, [(latent, camera) for camera in cameras], rendering,
                        output_dir / f'seed{seed:04d}.mp4', args.fps, args.max_batch_size, depth_path, seed)
    return output_dir


if __name__ == '__main__':
    run_cli(main)
