"""The rendering scripts on a tiny run: outputs open in their real readers and are reproducible."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import imageio.v2 as imageio
import imageio_ffmpeg
import mrcfile
import numpy as np
import pytest
import torch
from PIL import Image

import interpolate_w
import render_multiview_images
import render_video
import shape_extraction
from tiny_checkpoint import make_tiny_run
from checkpoints import load_generator
from inference.meshing import density_grid, vertex_colours
from generators.camera_utils import Cameras
from inference.rendering import inference_rendering, latent_from_seed, render_view
from inference.viewer import ViewRenderer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp('tiny_run')
    return str(make_tiny_run(folder))


def probe_video(path):
    """(frame count, width, height, codec, pix_fmt) as ffmpeg (imageio-ffmpeg's own binary) reads them."""
    info = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), '-hide_banner', '-i', str(path)],
                          capture_output=True, text=True).stderr
    stream = re.search(r'Video: (\w+).*?, (\w+)\(?[^,]*, (\d+)x(\d+)', info)
    assert stream, info
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    return frames, int(stream.group(3)), int(stream.group(4)), stream.group(1), stream.group(2)


def read_frames(path):
    with imageio.get_reader(path, format='FFMPEG') as reader:
        return np.stack([frame for frame in reader.iter_data()])


def test_multiview_images(run, tmp_path):
    args = [run, '--seeds', '0', '1', '--image_size', '16', '--depth_map', '--device', 'cpu']
    render_multiview_images.main(args + ['--output_dir', str(tmp_path / 'a')])
    for seed in (0, 1):
        for suffix in ('', '_depth'):
            with Image.open(tmp_path / 'a' / f'seed{seed:04d}{suffix}.png') as image:
                assert (image.size, image.mode) == ((5 * 16, 16), 'RGB')
    with Image.open(tmp_path / 'a' / 'seed0000.png') as image:
        views = np.asarray(image).reshape(16, 5, 16, 3)
    assert not np.array_equal(views[:, 0], views[:, 4])  # five different yaws

    render_multiview_images.main(args + ['--output_dir', str(tmp_path / 'b')])
    for name in ('seed0000.png', 'seed0001_depth.png'):
        assert (tmp_path / 'a' / name).read_bytes() == (tmp_path / 'b' / name).read_bytes()


def test_multiview_command_line(run, tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / 'render_multiview_images.py'), run, '--seeds', '3',
                             '--image_size', '8', '--ray_step_multiplier', '0.5', '--output_dir', str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / 'seed0003.png') as image:
        assert image.size == (40, 8)


def test_command_line_reports_checkpoint_errors_in_one_line(run, tmp_path):
    (tmp_path / 'generator.pth').symlink_to(run)  # no ema.pth beside it
    result = subprocess.run([sys.executable, str(ROOT / 'render_video.py'), str(tmp_path / 'generator.pth')],
                            cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert result.returncode != 0
    assert 'error: EMA weights not found' in result.stderr and '--no_ema' in result.stderr
    assert 'Traceback' not in result.stderr


@pytest.mark.parametrize('trajectory', ['front', 'orbit'])
def test_video_is_h264_yuv420p_with_even_sides(run, tmp_path, trajectory):
    args = [run, '--seeds', '5', '--image_size', '17', '--num_frames', '4', '--trajectory', trajectory]
    render_video.main(args + ['--depth_map', '--output_dir', str(tmp_path / 'a')])
    for name in ('seed0005.mp4', 'seed0005_depth.mp4'):
        assert probe_video(tmp_path / 'a' / name) == (4, 18, 18, 'h264', 'yuv420p')  # odd 17 padded to 18
    frames = read_frames(tmp_path / 'a' / 'seed0005.mp4')
    assert not np.array_equal(frames[0], frames[2])  # the camera moves

    render_video.main(args + ['--output_dir', str(tmp_path / 'b')])
    assert np.array_equal(frames, read_frames(tmp_path / 'b' / 'seed0005.mp4'))


def test_w_interpolation_video(run, tmp_path):
    interpolate_w.main([run, '--seeds', '0', '1', '2', '--frames_per_seed', '2', '--image_size', '16',
                        '--output_dir', str(tmp_path), '--depth_map'])
    assert probe_video(tmp_path / 'interpolation.mp4') == (6, 16, 16, 'h264', 'yuv420p')
    assert probe_video(tmp_path / 'interpolation_depth.mp4')[0] == 6
    interpolate_w.main([run, '--seeds', '0', '1', '--num_frames', '6', '--image_size', '16',
                        '--output_dir', str(tmp_path / 'total')])
    assert probe_video(tmp_path / 'total' / 'interpolation.mp4')[0] == 6


def test_a_full_disk_leaves_no_half_written_shape(run, small_disk):
    (small_disk / 'filler').write_bytes(bytes(shutil.disk_usage(small_disk).free - 100_000))
    out = small_disk / 'shapes'  # a 64^3 float32 volume is 1 MB
    result = subprocess.run([sys.executable, 'shape_extraction.py', run, '--seed', '0', '--voxel_resolution', '64',
                             '--output_dir', str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and 'Traceback' not in result.stderr, result.stderr[-3000:]
    assert result.stderr.splitlines()[-1].startswith(f'error: no space left on the disk of {out} ')
    assert os.listdir(out) == []  # neither a truncated seed0000.mrc nor its temporary file


def test_shape_extraction(run, tmp_path):
    generator, _ = load_generator(run)
    volume = density_grid(generator, latent_from_seed(generator, 0, 0.7), 12, 0.3, 500)
    level = float(volume.min() + volume.max()) / 2
    shape_extraction.main([run, '--seed', '0', '--voxel_resolution', '12', '--max_batch_size', '500',
                           '--level', str(level), '--output_dir', str(tmp_path)])
    shape_extraction.main([run, '--seeds', '0', '1', '--voxel_resolution', '12', '--level', str(level),
                           '--mesh_format', 'obj', '--output_dir', str(tmp_path / 'obj')])

    import trimesh
    assert mrcfile.validate(str(tmp_path / 'seed0000.mrc'))
    with mrcfile.open(tmp_path / 'seed0000.mrc') as mrc:
        assert mrc.data.shape == (12, 12, 12) and mrc.data.dtype == np.float32
        np.testing.assert_array_equal(mrc.data, volume)  # chunking changes nothing
    for path in (tmp_path / 'seed0000.ply', tmp_path / 'obj' / 'seed0000.obj'):
        mesh = trimesh.load(path, process=False)
        assert len(mesh.vertices) > 0 and len(mesh.faces) > 0
        assert mesh.visual.kind == 'vertex' and len(mesh.visual.vertex_colors) == len(mesh.vertices)
        assert np.abs(mesh.vertices).max() <= 0.15 + 1e-6  # inside the cube
        assert len(np.unique(mesh.visual.vertex_colors[:, :3], axis=0)) > 1


def spy_view_directions(generator):
    """Records the view directions every SIREN evaluation gets (fast or eager path)."""
    seen = []
    evaluate = generator.evaluate_siren

    def spy(points, view_directions, *args, **kwargs):
        seen.append(view_directions.detach().reshape(-1, 3))
        return evaluate(points, view_directions, *args, **kwargs)

    generator.evaluate_siren = spy
    return seen


def colour_at(generator, latent, point, direction):
    out = generator.siren.forward_with_frequencies_phase_shifts(
        point.reshape(1, 1, 3), latent.frequencies, latent.phase_shifts, ray_directions=direction.reshape(1, 1, 3))
    return out[0, 0, :3]


@pytest.mark.parametrize('locked', [True, False])
def test_lock_view_dependence(run, locked):
    """With the lock, two views give the SIREN the same direction, so a 3D point has one colour."""
    generator, settings = load_generator(run)
    rendering = inference_rendering(settings, 8, 1, lock_view_dependence=locked)
    latent = latent_from_seed(generator, 0)
    seen = spy_view_directions(generator)
    render_view(generator, latent, Cameras(yaw=1.2, pitch=1.5, fov=12), rendering, 10000)
    render_view(generator, latent, Cameras(yaw=1.9, pitch=1.7, fov=12), rendering, 10000)
    first, second = seen[0][0], seen[-1][0]  # the same pixel's direction in the two views
    point = torch.tensor([0.01, 0.02, 0.03])
    with torch.no_grad():
        same = torch.equal(colour_at(generator, latent, point, first), colour_at(generator, latent, point, second))
    assert same == locked
    if locked:
        assert all(torch.equal(d, torch.tensor([0.0, 0.0, -1.0]).expand_as(d)) for d in seen)


def test_a_generator_trained_locked_is_rendered_locked(tmp_path):
    """Its colour branch only ever saw -z: renders, mesh colours and the viewer keep the lock unasked."""
    run = make_tiny_run(tmp_path, colour_gain=30, lock_view_dependence=True)
    generator, settings = load_generator(run)
    assert settings.rendering.lock_view_dependence is True
    seen = spy_view_directions(generator)
    render_view(generator, latent_from_seed(generator, 0), Cameras(yaw=1.2, pitch=1.5, fov=12),
                inference_rendering(settings, 8), 10000)
    assert all(torch.equal(d, torch.tensor([0.0, 0.0, -1.0]).expand_as(d)) for d in seen)

    assert ViewRenderer(generator, settings).default_settings().lock_view_dependence is True
    generator.evaluate_siren = type(generator).evaluate_siren.__get__(generator)  # the spy off again
    latent = latent_from_seed(generator, 0, 0.7)
    volume = density_grid(generator, latent, 12, 0.3, 500)
    level = float(volume.min() + volume.max()) / 2
    shape_extraction.main([str(run), '--seed', '0', '--voxel_resolution', '12', '--level', str(level),
                           '--output_dir', str(tmp_path / 'mesh')])
    import trimesh
    mesh = trimesh.load(tmp_path / 'mesh' / 'seed0000.ply', process=False)
    vertices = np.asarray(mesh.vertices, dtype=np.float32)
    front = Cameras(yaw=settings.camera.h_mean, pitch=settings.camera.v_mean, fov=settings.camera.fov)
    locked, unlocked = (vertex_colours(generator, latent, vertices, front, 500, lock) for lock in (True, False))
    assert not np.array_equal(locked, unlocked)
    np.testing.assert_array_equal(mesh.visual.vertex_colors, locked)


def test_vertex_colours_follow_the_lock(run):
    generator, _ = load_generator(run)
    latent = latent_from_seed(generator, 0)
    vertices = np.array([[0.01, 0.02, 0.03], [-0.02, 0.0, 0.05]], dtype=np.float32)
    colours = [vertex_colours(generator, latent, vertices, Cameras(yaw=yaw, pitch=1.5, fov=12), 100, locked)
               for locked in (True, False) for yaw in (1.2, 1.9)]
    assert np.array_equal(colours[0], colours[1])  # locked: the camera does not matter
    assert np.array_equal(colours[0][:, 3], [255, 255])


# --- the turntable: a full turn, its last frame one step before the first ------------

FRAMES = 6


@pytest.fixture(scope='module')
def coloured_run(tmp_path_factory):
    # Views that differ, and change smoothly with the camera: a yaw and the same yaw plus a full turn
    # render alike. (Its EMA weights are its raw ones.)
    return make_tiny_run(tmp_path_factory.mktemp('coloured_run'), colour_gain=30, smooth=True, ema_shift=0)


def turntable_frames(producer, run_path, tmp_path):
    """(frames of the turntable video, renderer, settings, start camera) for render_video.py --trajectory orbit
    or the viewer's turntable export, both of the tiny run at 16x16."""
    generator, run_settings = load_generator(run_path)
    mean = run_settings.camera
    renderer = ViewRenderer(generator, run_settings, max_batch_size=100000)
    if producer == 'render_video':
        render_video.main([str(run_path), '--seeds', '2', '--image_size', '16', '--num_frames', str(FRAMES),
                           '--trajectory', 'orbit', '--device', 'cpu', '--output_dir', str(tmp_path)])
        path = tmp_path / 'seed0002.mp4'
        settings = renderer.default_settings(seed=2, psi=0.7)  # the script's default truncation
        start = Cameras(yaw=mean.h_mean, pitch=mean.v_mean, fov=mean.fov)
    else:
        settings = renderer.default_settings(seed=2)
        start = Cameras(yaw=mean.h_mean + 0.4, pitch=mean.v_mean - 0.1, fov=14)  # the view on screen
        path = renderer.save_turntable(settings, start, 16, tmp_path, num_frames=FRAMES)
    return read_frames(path).astype(float), renderer, settings, start


@pytest.mark.parametrize('producer', ['render_video', 'viewer'])
def test_turntable_turns_once_and_its_last_frame_is_one_step_before_the_first(producer, coloured_run, tmp_path):
    frames, renderer, settings, start = turntable_frames(producer, coloured_run, tmp_path)
    assert len(frames) == FRAMES
    step = 2 * np.pi / FRAMES

    def rendered(yaw):
        return renderer.render(settings, Cameras(yaw=yaw, pitch=start.pitch, fov=start.fov), 16).image.astype(float)

    def error(frame, yaw):
        # Mean luma difference in 0..255 levels: 4:2:0 keeps colour at a quarter of the pixels, which
        # blurs a tiny noisy image's colour by tens of levels, but its brightness within a few.
        luma = np.array([0.299, 0.587, 0.114])
        return np.abs((frame - rendered(yaw)) @ luma).mean()

    # First frame: the start view. Last frame: one step short of a full turn, not the start again
    # (a loop that repeats a frame stutters) nor any other point of the turn.
    candidates = {f'{k} steps': float(start.yaw) + k * step for k in range(FRAMES)}
    for frame, expected in ((frames[0], '0 steps'), (frames[-1], f'{FRAMES - 1} steps')):
        errors = {name: error(frame, yaw) for name, yaw in candidates.items()}
        assert min(errors, key=errors.get) == expected, errors
        assert errors[expected] < 4 and all(e > 2 * errors[expected] for n, e in errors.items() if n != expected)
    assert error(frames[-1], float(start.yaw) - step) < 4  # the same view, one step before the start
