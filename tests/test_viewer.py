"""The viewer without a browser: camera mapping, the render callback, exports, and bad input."""

import math
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import torch
from PIL import Image

from checkpoints import load_generator
from inference.meshing import density_grid
from generators.camera_utils import Cameras
from inference.rendering import inference_rendering, latent_from_seed, render_view
from inference.viewer import (ViewRenderer, camera_from_browser, camera_from_position, normal_map,
                              fit_to_canvas, position_from_camera)
from inference.viewer_server import PortInUseError, RenderSchedule, check_port_free
import viewer
from reference import OFFICIAL_DIR
from tiny_checkpoint import make_tiny_run
from utils.media import depth_to_uint8, to_uint8

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    return make_tiny_run(tmp_path_factory.mktemp('tiny_run'), colour_gain=30)


@pytest.fixture(scope='module')
def renderer(run):
    generator, settings = load_generator(run)
    return ViewRenderer(generator, settings, max_batch_size=100000)


def position_at(yaw, pitch, distance=1.0):
    return position_from_camera(Cameras(yaw=yaw, pitch=pitch, fov=12), distance)


def test_browser_position_maps_to_yaw_pitch_and_zoom_to_fov():
    # Cameras hold float32 angles: positions are exact to float32's precision.
    assert np.allclose(position_at(math.pi / 2, math.pi / 2), [0, 0, 1], atol=1e-7)  # π-GAN's front: +z
    assert np.allclose(position_at(0.3, 1.2), [math.sin(1.2) * math.cos(0.3), math.cos(1.2),
                                               math.sin(1.2) * math.sin(0.3)], atol=1e-7)
    for yaw, pitch in [(math.pi / 2, math.pi / 2), (0.3, 1.2), (-2.5, 2.9)]:
        (seen_yaw, seen_pitch, fov), = camera_from_position(position_at(yaw, pitch), fov=12).tolist()
        assert (seen_yaw, seen_pitch, fov) == pytest.approx((yaw, pitch, 12))
    # Twice as far sees twice the half-width of the image plane; half as far, half.
    for distance in (0.5, 2.0):
        (yaw, pitch, fov), = camera_from_position(position_at(1.0, 1.4, distance), fov=12).tolist()
        assert math.tan(math.radians(fov) / 2) == pytest.approx(distance * math.tan(math.radians(6)))
        assert (yaw, pitch) == pytest.approx((1.0, 1.4))
    # Straight above: pitch clamped as the pose sampler clamps it.
    assert float(camera_from_position([0, 1, 0], 12).pitch) == pytest.approx(1e-5)


def test_a_camera_where_the_viewer_placed_it_is_exact():
    placed = Cameras(yaw=math.pi / 2, pitch=math.pi / 2, fov=12)
    # The browser reports the position back through float32 maths: a few float32 steps of the angles off.
    echoed = position_from_camera(placed) + 3e-7
    assert camera_from_browser(echoed, 12, placed).tolist() == placed.tolist()
    assert camera_from_position(echoed, 12).tolist() != placed.tolist()
    moved = camera_from_browser(position_at(math.pi / 2 + 0.1, math.pi / 2), 12, placed)
    assert float(moved.yaw) == pytest.approx(math.pi / 2 + 0.1)


def test_render_callback_is_render_view_in_each_display(renderer):
    generator, run_settings = renderer.generator, renderer.run_settings
    camera = Cameras(yaw=1.3, pitch=1.4, fov=15)
    settings = renderer.default_settings(seed=3, psi=0.6, ray_step_multiplier=0.5)
    rendering = inference_rendering(run_settings, 12, 0.5, False)
    pixels, depth = render_view(generator, latent_from_seed(generator, 3, 0.6), camera, rendering, 100000, 3)

    frame = renderer.render(settings, camera, 12)
    assert frame.image.shape == (12, 12, 3) and frame.image.dtype == np.uint8
    assert np.array_equal(frame.image, to_uint8(pixels))
    depth_frame = renderer.render(replace(settings, display='depth'), camera, 12)
    assert np.array_equal(depth_frame.image, depth_to_uint8(depth, rendering.ray_start, rendering.ray_end))
    normals = renderer.render(replace(settings, display='normals'), camera, 12).image
    assert normals.shape == (12, 12, 3) and len(np.unique(normals.reshape(-1, 3), axis=0)) > 1


def test_interpolation_mixes_latents_in_w_space(renderer):
    generator = renderer.generator
    a, b = latent_from_seed(generator, 4, 0.7), latent_from_seed(generator, 9, 0.7)
    halfway = renderer.latent(renderer.default_settings(seed=4, seed_b=9, mix=0.5))
    assert torch.allclose(halfway.frequencies, (a.frequencies + b.frequencies) / 2)
    assert torch.allclose(halfway.phase_shifts, (a.phase_shifts + b.phase_shifts) / 2)
    assert torch.equal(renderer.latent(renderer.default_settings(seed=4, seed_b=9)).frequencies, a.frequencies)
    camera = Cameras(yaw=math.pi / 2, pitch=math.pi / 2, fov=12)
    images = [renderer.render(renderer.default_settings(seed=4, seed_b=9, mix=mix), camera, 12).image.astype(int)
              for mix in (0.0, 0.5, 1.0)]
    assert np.abs(images[0] - images[1]).mean() > 5 and np.abs(images[1] - images[2]).mean() > 5


def test_normals_face_the_camera_and_tilt_the_right_way():
    size, fov = 32, 30
    tan = math.tan(math.radians(fov) / 2)
    x = torch.linspace(-1, 1, size) * tan  # image-plane coordinates at z = -1, right and up positive
    y = torch.linspace(1, -1, size) * tan
    y, x = torch.meshgrid(y, x, indexing='ij')
    along_ray = torch.sqrt(x ** 2 + y ** 2 + 1)  # distance to z = -1 per unit of depth
    flat = normal_map(1.0 * along_ray, fov)  # the plane z = -1 faces the camera: normal +z
    assert np.abs(flat[2:-2, 2:-2].astype(int) - [128, 128, 255]).max() <= 1
    # The plane z = -1 - 0.5 x: farther on the right, so it faces right (+x) and the camera.
    depth = along_ray / (1 - 0.5 * x)  # where the ray d = (x, y, -1) t meets the plane: t = 1 / (1 - 0.5 x)
    tilted = normal_map(depth, fov)[2:-2, 2:-2].astype(int)
    expected = (np.array([0.5, 0, 1]) / math.sqrt(1.25) + 1) * 127.5
    assert np.abs(tilted - expected).max() <= 2


def test_fitting_to_the_canvas_keeps_pixels_square():
    image = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    wide, left, top, scale = fit_to_canvas(image, 200, 100, min_side=4)
    assert wide.shape == (4, 8, 3) and (left, top, scale) == (2, 0, 1)
    assert np.array_equal(wide[:, 2:6], image) and (wide[:, :2] == 255).all()
    tall, left, top, scale = fit_to_canvas(image, 100, 300, min_side=4)
    assert tall.shape == (12, 4, 3) and (left, top) == (0, 4)
    # A small image is enlarged by whole pixels first, so a 776 x 740 canvas keeps its aspect.
    fitted, left, top, scale = fit_to_canvas(image, 776, 740, min_side=10)
    assert scale == 3 and fitted.shape == (12, 13, 3) and (left, top) == (0, 0)
    assert np.array_equal(fitted[:12, :12], image.repeat(3, 0).repeat(3, 1))
    fitted, left, top, scale = fit_to_canvas(image, 776, 740)
    assert scale == 128 and abs(fitted.shape[1] / fitted.shape[0] - 776 / 740) < 1e-3


def test_exports_write_files_their_readers_open(renderer, tmp_path):
    import trimesh

    settings = renderer.default_settings(seed=2)
    camera = Cameras(yaw=math.pi / 2, pitch=math.pi / 2, fov=12)
    first = renderer.save_png(settings, camera, 12, tmp_path)
    second = renderer.save_png(settings, camera, 12, tmp_path)
    assert (first.name, second.name) == ('seed0002_000.png', 'seed0002_001.png')  # never overwrites
    with Image.open(first) as image:
        assert np.array_equal(np.asarray(image), renderer.render(settings, camera, 12).image)

    video = renderer.save_turntable(settings, camera, 10, tmp_path, num_frames=3)
    assert imageio_ffmpeg.count_frames_and_secs(str(video))[0] == 3

    with pytest.raises(ValueError, match='never crosses'):  # a fresh tiny model holds little density
        renderer.save_mesh(settings, camera, tmp_path, voxel_resolution=8, level=1e6)
    volume = density_grid(renderer.generator, renderer.latent(settings), 12, 0.3, 100000)
    level = float(volume.min() + volume.max()) / 2
    mesh_path = renderer.save_mesh(settings, camera, tmp_path, voxel_resolution=12, level=level)
    mesh = trimesh.load(mesh_path, process=False)
    assert mesh_path.suffix == '.ply' and len(mesh.faces) > 0
    assert len(mesh.visual.vertex_colors) == len(mesh.vertices)


def test_previews_while_changing_full_size_once_at_rest():
    schedule = RenderSchedule(settle=0.2)
    schedule.changed()
    version, size = schedule.next_job(preview_size=8, full_size=32)
    assert size == 8  # right after a change: a preview
    schedule.shown(version, False)
    start = time.monotonic()
    assert schedule.next_job(8, 32) == (version, 32)  # at rest: the full size, after the settle time
    assert time.monotonic() - start >= 0.15
    schedule.shown(version, True)

    schedule.changed()  # moving again: previews of the newest state, however many changes came
    schedule.changed()
    assert schedule.next_job(8, 32) == (version + 2, 8)
    assert schedule.next_job(64, 32)[1] == 32  # a preview never exceeds the full size

    results = []
    waiting = threading.Thread(target=lambda: results.append(schedule.next_job(8, 32)))
    schedule.shown(version + 2, True)
    waiting.start()
    schedule.close()  # a closed tab ends its render thread
    waiting.join(timeout=5)
    assert results == [None]


def test_busy_port_is_refused_in_one_line(run):
    with socket.socket() as busy:
        busy.bind(('127.0.0.1', 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(PortInUseError, match=f'127.0.0.1:{port}.*--port'):
            check_port_free('127.0.0.1', port)
        result = subprocess.run([sys.executable, str(ROOT / 'viewer.py'), str(run), '--port', str(port)],
                                cwd=ROOT, capture_output=True, text=True, timeout=300,
                                env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    assert result.stderr.strip().startswith('error: cannot listen on') and len(result.stderr.strip().splitlines()) == 1


def test_missing_checkpoint_is_reported_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / 'viewer.py'), str(tmp_path / 'nothing' / 'generator.pth'),
                             '--port', '0'], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    assert result.stderr.strip().startswith('error:') and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(not (OFFICIAL_DIR / 'generator.pth').exists() and not os.environ.get('CI'),
                    reason=f'official fixture not found at {OFFICIAL_DIR}')
def test_serves_an_original_release_checkpoint(tmp_path):
    path = OFFICIAL_DIR / 'generator.pth'
    served = viewer.main([str(path), '--curriculum', 'CelebA', '--port', '0', '--device', 'cpu',
                          '--output_dir', str(tmp_path)], serve_forever=False)
    try:
        port = served.server.get_port()
        with urllib.request.urlopen(f'http://127.0.0.1:{port}/', timeout=30) as page:
            assert page.status == 200 and b'<html' in page.read().lower()
        generator, settings = load_generator(path, curriculum='CelebA')
        camera = Cameras(yaw=1.4, pitch=1.6, fov=12)
        pixels, _ = render_view(generator, latent_from_seed(generator, 0, 0.7), camera,
                                inference_rendering(settings, 8), 100000, 0)
        renderer = served.renderer
        assert np.array_equal(renderer.render(renderer.default_settings(), camera, 8).image, to_uint8(pixels))
    finally:
        served.stop()
