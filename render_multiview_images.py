"""Renders each seed from five yaws around the mean view (one row of five images per seed).

    python render_multiview_images.py RUN/generator.pth --seeds 0 1 2 3 --output_dir multiview/

Writes seedNNNN.png (and seedNNNN_depth.png with --depth_map) into --output_dir.
"""

import argparse
from pathlib import Path

from tqdm import tqdm

from inference.arguments import add_generator_arguments, load_generator_from_args
from utils.cli import run_cli
from utils.media import depth_to_uint8, image_grid, save_image, to_uint8
from inference.rendering import (add_render_arguments, inference_rendering, latent_from_seed, render_view,
                                   yaw_row)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_generator_arguments(parser)
    add_render_arguments(parser, output_dir='multiview_images', image_size=256, ray_step_multiplier=2)
    args = parser.parse_args(argv)

    generator, settings, _ = load_generator_from_args(args)
    rendering = inference_rendering(settings, args.image_size, args.ray_step_multiplier, args.lock_view_dependence)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    cameras = yaw_row(settings.camera)  # yaw -0.5 to +0.5 rad around the mean
    for seed in tqdm(args.seeds, desc='seeds', unit='seed'):
        latent = latent_from_seed(generator, seed, args.psi)
        views = [render_view(generator, latent, camera, rendering, args.max_batch_size, seed)
                 for camera in tqdm(cameras, desc=f'seed {seed}', unit='view', leave=False)]
        save_image(image_grid([to_uint8(pixels) for pixels, _ in views]), output_dir / f'seed{seed:04d}.png')
        if args.depth_map:
            depths = [depth_to_uint8(depth, rendering.ray_start, rendering.ray_end) for _, depth in views]
            save_image(image_grid(depths), output_dir / f'seed{seed:04d}_depth.png')
    return output_dir


if __name__ == '__main__':
    run_cli(main)
