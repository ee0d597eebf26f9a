"""Inverse rendering: fits a latent (and optionally the camera pose) to one image, then renders it anew.

    python inverse_render.py RUN/generator.pth face.png --output_dir inversion/

Writes into --output_dir: target.png (the image as fitted), reconstruction.png,
novel_views.png (five yaws), video.mp4, and latent.pt (frequencies, phase
shifts, their offsets from the average, pose, losses; weights_only-loadable).
"""

import argparse
from pathlib import Path

from torch_utils.checkpoint import atomic_save
from torch_utils.cli import add_generator_arguments, load_generator_from_args
from torch_utils.inversion import fit_latent, fit_to_dict
from torch_utils.media import image_grid, load_image, save_image, to_uint8
from torch_utils.rendering import (Camera, add_video_arguments, inference_options, render_to_video, render_view,
                                   run_cli, trajectory, yaw_row)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_generator_arguments(parser)
    parser.add_argument('image', help="image to fit (centre-cropped to a square)")
    parser.add_argument('--output_dir', default='inversion', help="folder for the outputs (created)")
    parser.add_argument('--image_size', type=int, default=64, help="resolution the fit is done at")
    parser.add_argument('--render_size', type=int, default=128, help="resolution of the outputs")
    parser.add_argument('--num_iterations', '--n_iterations', type=int, default=700, help="optimisation steps")
    parser.add_argument('--lr', type=float, default=1e-2, help="initial learning rate of the latent offsets")
    parser.add_argument('--noise_scale', type=float, default=0.03,
                        help="std of the noise on the offsets at the start (fades to 0)")
    parser.add_argument('--optimize_pose', action=argparse.BooleanOptionalAction, default=False,
                        help="also fit the camera's yaw and pitch")
    parser.add_argument('--pose_lr', type=float, default=5e-3, help="learning rate of yaw and pitch")
    parser.add_argument('--yaw', type=float, default=None, help="starting yaw, radians (default: the mean)")
    parser.add_argument('--pitch', type=float, default=None, help="starting pitch, radians (default: the mean)")
    parser.add_argument('--ray_step_multiplier', type=float, default=2,
                        help="samples per ray = the curriculum's num_steps times this")
    parser.add_argument('--lock_view_dependence', action='store_true', help="colour independent of view direction")
    parser.add_argument('--seed', type=int, default=0, help="seed of the fitting noise")
    add_video_arguments(parser)
    args = parser.parse_args(argv)

    generator, metadata, _ = load_generator_from_args(args)
    options = inference_options(metadata, args.image_size, args.ray_step_multiplier, args.lock_view_dependence)
    start = Camera(metadata['h_mean'] if args.yaw is None else args.yaw,
                   metadata['v_mean'] if args.pitch is None else args.pitch, metadata['fov'])
    target = load_image(args.image, args.image_size)
    fit = fit_latent(generator, target, options, start, args.num_iterations, args.lr, args.pose_lr,
                     args.noise_scale, args.optimize_pose, args.seed)
    print(f"MSE {fit.initial_loss:.4f} -> {fit.final_loss:.4f}; yaw {fit.camera.yaw:.3f}, pitch {fit.camera.pitch:.3f}")

    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    atomic_save(fit_to_dict(fit, image=str(args.image), image_size=args.image_size), output_dir / 'latent.pt')
    save_image(to_uint8(target[0]), output_dir / 'target.png')
    options = inference_options(metadata, args.render_size, args.ray_step_multiplier, args.lock_view_dependence)

    def render(camera):
        return to_uint8(render_view(generator, fit.latent, camera, options, args.max_batch_size, args.seed)[0])

    save_image(render(fit.camera), output_dir / 'reconstruction.png')
    pose = {**options, 'h_mean': fit.camera.yaw, 'v_mean': fit.camera.pitch}
    save_image(image_grid([render(camera) for camera in yaw_row(pose)]), output_dir / 'novel_views.png')
    cameras = trajectory(args.trajectory, args.num_frames, pose)
    render_to_video(generator, [(fit.latent, camera) for camera in cameras], options, output_dir / 'video.mp4',
                    args.fps, args.max_batch_size, seed=args.seed)
    return fit


if __name__ == '__main__':
    run_cli(main)
