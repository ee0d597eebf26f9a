"""Inverse rendering: fits a latent (and optionally the poses) to one image or several views, then renders it anew.

    python inverse_render.py RUN/generator.pth face.png --output_dir inversion/
    python inverse_render.py RUN/generator.pth my_photo.jpg --align --optimize_pose --output_dir inversion/
    python inverse_render.py RUN/generator.pth front.png --yaw 1.571 --pitch 1.571 \\
        --view left.png 1.071 1.571 --view right.png 2.071 1.571 --fit_weights --output_dir inversion/

--align takes an unaligned photo (phone snapshot, portrait): the face is found,
levelled and cropped as prepare_dataset.py does for training (aligned.png in
--output_dir), and the fit starts from its estimated yaw and pitch.

Each --view IMAGE YAW PITCH adds an image of the same scene seen from that pose
(radians, the generator's convention); all views share one latent. --fit_weights
also tunes the SIREN's weights (pivotal tuning), for scenes W space cannot hold.

Writes into --output_dir: target.png (the first image as fitted), reconstruction.png,
views.png (with several views: targets above their reconstructions),
novel_views.png (five yaws), video.mp4, and latent.pt (frequencies, phase shifts,
their offsets from the average, poses, losses; weights_only-loadable). With
--fit_weights, also generator.pth and ema.pth: the tuned generator (the same
weights in both), which the other scripts load like a run's; give them the
fitted latent with `shape_extraction.py OUTPUT_DIR/generator.pth --latent OUTPUT_DIR/latent.pt`.
"""

import argparse
from dataclasses import replace
from pathlib import Path

import torch

from checkpoints import atomic_save, ema_checkpoint, generator_checkpoint, save_all
from generators.camera_utils import Cameras
from inference.arguments import add_generator_arguments, load_generator_from_args
from utils.cli import run_cli
from torch_utils.ema import ExponentialMovingAverage
from inference.inversion import add_fit_arguments, fit_to_dict, invert
from utils.media import image_grid, load_image, save_image, to_uint8
from inference.rendering import (add_video_arguments, inference_rendering, render_to_video, render_view, trajectory,
                                   yaw_row)


def save_tuned_generator(generator, settings, output_dir):
    """generator.pth and ema.pth in this project's format, so the scripts load the tuned weights as a run."""
    ema = ExponentialMovingAverage(generator, 0.999)  # its shadow: the tuned weights themselves
    # The checkpoint records a plain curriculum: the settings' keys, one stage for the whole run.
    save_all(output_dir, {
        'generator.pth': generator_checkpoint(generator, generator.step, generator.epoch, 'inverse_render',
                                              settings.as_metadata(),
                                              options={'tuned_by': 'inverse_render.py --fit_weights'}),
        'ema.pth': ema_checkpoint(ema, generator.step),
    })


def align_for_inversion(photo, aligned_path):
    """(aligned_path, yaw, pitch): the photo's face aligned as for training, saved there, and its estimated pose."""
    from preprocessing.images import PhotoError
    from preprocessing.photos import align_photo
    try:
        aligned, record = align_photo(photo)
    except PhotoError as error:
        raise SystemExit(f"error: --align: {photo}: {error.reason} ({error})") from None
    aligned.save(aligned_path)
    print(f"aligned {photo} -> {aligned_path}; estimated yaw {record['yaw']:.3f}, pitch {record['pitch']:.3f}")
    return str(aligned_path), record['yaw'], record['pitch']


def parse_views(parser, args):
    """--view triples as (image, yaw, pitch) with float angles."""
    views = []
    for image, yaw, pitch in args.view:
        try:
            views.append((image, float(yaw), float(pitch)))
        except ValueError:
            parser.error(f"--view {image} {yaw} {pitch}: YAW and PITCH must be numbers (radians)")
    return views


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_generator_arguments(parser)
    parser.add_argument('image', help="image to fit (centre-cropped to a square)")
    parser.add_argument('--align', action='store_true',
                        help="the image is an unaligned photo: find, level and crop its face as prepare_dataset.py "
                             "does, and start from its estimated pose (unless --yaw/--pitch are given)")
    parser.add_argument('--view', nargs=3, action='append', default=[], metavar=('IMAGE', 'YAW', 'PITCH'),
                        help="another image of the same scene and its camera's yaw and pitch, radians (repeatable)")
    parser.add_argument('--output_dir', default='inversion', help="folder for the outputs (created)")
    add_fit_arguments(parser)
    parser.add_argument('--render_size', type=int, default=128, help="resolution of the outputs")
    parser.add_argument('--yaw', type=float, default=None,
                        help="starting yaw, radians (default: the mean, or with --optimize_pose the pose search's)")
    parser.add_argument('--pitch', type=float, default=None, help="starting pitch, radians (as --yaw)")
    add_video_arguments(parser)
    args = parser.parse_args(argv)
    extra_views = parse_views(parser, args)

    generator, settings, _ = load_generator_from_args(args)
    fov = settings.camera.fov
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    first, start_yaw, start_pitch = args.image, settings.camera.h_mean, settings.camera.v_mean
    if args.align:
        first, start_yaw, start_pitch = align_for_inversion(args.image, output_dir / 'aligned.png')
    images = [first] + [image for image, _, _ in extra_views]
    start_yaw = start_yaw if args.yaw is None else args.yaw
    start_pitch = start_pitch if args.pitch is None else args.pitch
    cameras = Cameras(yaw=[start_yaw] + [yaw for _, yaw, _ in extra_views],
                      pitch=[start_pitch] + [pitch for _, _, pitch in extra_views], fov=fov)
    targets = torch.cat([load_image(image, args.image_size) for image in images])
    search = args.yaw is None and args.pitch is None and not args.align  # a given start pose is kept
    fit = invert(generator, settings, targets, cameras, args, search_pose_first=search)
    (fit_yaw, fit_pitch, _), = fit.camera.tolist()
    print(f"MSE {fit.initial_loss:.4f} -> {fit.final_loss:.4f}; yaw {fit_yaw:.3f}, pitch {fit_pitch:.3f}")

    atomic_save(fit_to_dict(fit, image=str(args.image), images=[str(image) for image in images],
                            image_size=args.image_size), output_dir / 'latent.pt')
    if args.fit_weights:
        save_tuned_generator(fit.generator, settings, output_dir)
    save_image(to_uint8(targets[0]), output_dir / 'target.png')
    rendering = inference_rendering(settings, args.render_size, args.ray_step_multiplier, args.lock_view_dependence)

    def render(camera):
        return to_uint8(render_view(fit.generator, fit.latent, camera, rendering, args.max_batch_size, args.seed)[0])

    save_image(render(fit.camera), output_dir / 'reconstruction.png')
    if len(images) > 1:
        shown = torch.nn.functional.interpolate(targets, size=args.render_size, mode='bilinear', antialias=True)
        save_image(image_grid([to_uint8(target) for target in shown] + [render(camera) for camera in fit.cameras],
                              columns=len(images)), output_dir / 'views.png')
    pose = replace(settings.camera, h_mean=fit_yaw, v_mean=fit_pitch)
    save_image(image_grid([render(camera) for camera in yaw_row(pose)]), output_dir / 'novel_views.png')
    cameras = trajectory(args.trajectory, args.num_frames, pose)
    render_to_video(fit.generator, [(fit.latent, camera) for camera in cameras], rendering, output_dir / 'video.mp4',
                    args.fps, args.max_batch_size, seed=args.seed)
    return fit


if __name__ == '__main__':
    run_cli(main)
