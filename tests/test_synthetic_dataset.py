"""Synthetic heads: determinism, poses that match the pixels, framing, known geometry."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import datasets
import synthetic_dataset
from settings import CameraDistribution
from synthetic import dataset as synthetic_files
from synthetic import heads as synthetic_heads
from utils.media import to_uint8

FRONT = math.pi / 2
CAMERA = dict(fov=12, h_mean=FRONT, v_mean=FRONT, h_stddev=0.3, v_stddev=0.155, sample_dist='gaussian')
CAMERA_SETTINGS = CameraDistribution(**CAMERA)  # CAMERA: as poses.json records it


def heads(count, seed=0):
    return synthetic_heads.sample_head_params(count, np.random.default_rng(seed))


@pytest.fixture(scope='module')
def small_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp('synthetic') / 'set'
    synthetic_files.make_synthetic_dataset(str(folder), 6, img_size=32, seed=0, progress=False, batch_size=4,
                                           camera=CAMERA_SETTINGS)
    return folder


def read_png(path):
    return np.asarray(Image.open(path))


def nose_centroid(head, pitch, yaw, size=48):
    """(column, row) of the nose's pixels in the supersampled part buffer."""
    _, buffers = synthetic_heads.render_heads(head, [pitch], [yaw], size, 12, return_buffers=True)
    rows, cols = torch.nonzero(buffers['part'][0] == synthetic_heads.NOSE, as_tuple=True)
    assert len(rows) > 0, 'nose not visible'
    return cols.float().mean().item(), rows.float().mean().item()


# --- files ----------------------------------------------------------------------------------

def test_files_and_metadata(small_dataset):
    metadata = json.loads((small_dataset / synthetic_files.METADATA_FILE).read_text())
    assert metadata['num_images'] == 6 and metadata['img_size'] == 32 and metadata['camera'] == CAMERA
    assert [e['file'] for e in metadata['images']] == [f'{i:05d}.png' for i in range(6)]
    for entry in metadata['images']:
        assert read_png(small_dataset / entry['file']).shape == (32, 32, 3)
        assert set(entry['params']) >= {'head_radii', 'skin_color', 'hair_color', 'eye_radius', 'nose_radii'}
    yaws = [e['yaw'] for e in metadata['images']]
    assert len(set(yaws)) == 6  # poses vary


def test_same_seed_same_bytes_other_seed_differs(small_dataset, tmp_path):
    again, other = tmp_path / 'again', tmp_path / 'other'
    synthetic_files.make_synthetic_dataset(str(again), 6, img_size=32, seed=0, progress=False, batch_size=3,
                                           camera=CAMERA_SETTINGS)
    synthetic_files.make_synthetic_dataset(str(other), 6, img_size=32, seed=1, progress=False, camera=CAMERA_SETTINGS)
    names = sorted(os.listdir(small_dataset))
    assert names == sorted(os.listdir(again))
    for name in names:  # batch size differs too: results must not depend on it
        assert (small_dataset / name).read_bytes() == (again / name).read_bytes(), name
    assert all((small_dataset / n).read_bytes() != (other / n).read_bytes() for n in names)


def test_smaller_dataset_is_a_prefix(small_dataset, tmp_path):
    synthetic_files.make_synthetic_dataset(str(tmp_path), 3, img_size=32, seed=0, progress=False,
                                           camera=CAMERA_SETTINGS)
    for i in range(3):
        assert (tmp_path / f'{i:05d}.png').read_bytes() == (small_dataset / f'{i:05d}.png').read_bytes()
    prefix = synthetic_files.load_metadata(str(small_dataset))['images'][:3]
    assert synthetic_files.load_metadata(str(tmp_path))['images'] == prefix


def test_stored_pose_and_params_rerender_the_png(small_dataset):
    metadata = synthetic_files.load_metadata(str(small_dataset))
    for index, entry in enumerate(metadata['images']):
        stored = read_png(small_dataset / entry['file'])
        image = synthetic_heads.render_heads(entry['params'], [entry['pitch']], [entry['yaw']], 32, CAMERA['fov'],
                                             supersample=metadata['supersample'])
        assert np.array_equal(to_uint8(image, value_range=(0, 1))[0], stored)
        if index == 0:
            turned = synthetic_heads.render_heads(entry['params'], [entry['pitch']], [entry['yaw'] + 0.2], 32,
                                                  CAMERA['fov'])
            assert np.abs(to_uint8(turned, value_range=(0, 1))[0].astype(int) - stored).mean() > 2


def test_interrupted_run_is_not_complete(tmp_path, monkeypatch):
    folder = tmp_path / 'set'
    synthetic_files.make_synthetic_dataset(str(folder), 2, img_size=16, progress=False)
    assert synthetic_files.load_metadata(str(folder)) is not None
    real_render, calls = synthetic_heads.render_heads, []

    def failing_render(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_render(*args, **kwargs)

    monkeypatch.setattr(synthetic_files, 'render_heads', failing_render)
    with pytest.raises(KeyboardInterrupt):
        synthetic_files.make_synthetic_dataset(str(folder), 5, img_size=16, progress=False, batch_size=2)
    assert os.path.exists(folder / '00001.png')
    assert synthetic_files.load_metadata(str(folder)) is None  # the old metadata went before any image was replaced
    with pytest.raises(datasets.DatasetError, match='not a complete synthetic dataset'):
        datasets.Synthetic(str(folder), img_size=16)


def test_command_line_takes_camera_from_curriculum(tmp_path, capsys):
    folder = tmp_path / 'cli'
    synthetic_dataset.main(['--output_dir', str(folder), '--num_images', '2', '--img_size', '16', '--seed', '3',
             '--curriculum', 'CATS'])
    metadata = synthetic_files.load_metadata(str(folder))
    assert metadata['seed'] == 3 and metadata['num_images'] == 2
    assert metadata['camera'] == dict(fov=12, h_mean=FRONT, v_mean=FRONT, h_stddev=0.5, v_stddev=0.4,
                                      sample_dist='uniform')
    assert 'wrote 2 images' in capsys.readouterr().out


def test_poses_follow_the_camera_distribution():
    pitch, yaw = synthetic_files.sample_poses(4000, 0, **{k: v for k, v in CAMERA.items() if k != 'fov'})
    assert abs(yaw.mean() - FRONT) < 0.02 and abs(yaw.std() - 0.3) < 0.02
    assert abs(pitch.mean() - FRONT) < 0.01 and abs(pitch.std() - 0.155) < 0.01
    state = torch.get_rng_state()
    synthetic_files.sample_poses(3, 5, **{k: v for k, v in CAMERA.items() if k != 'fov'})
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is left alone


# --- images match poses ------------------------------------------------------------------------

def test_nose_moves_with_yaw_and_pitch():
    head = heads(1, seed=4)[0]
    centre = 48 * 2 / 2 - 0.5  # supersampled image centre
    offsets = [-0.4, -0.2, 0.0, 0.2, 0.4]
    columns = [nose_centroid(head, FRONT, FRONT + d)[0] for d in offsets]
    assert abs(columns[2] - centre) < 1.5  # facing the camera: nose in the middle
    for offset, column in zip(offsets, columns):
        if offset:
            assert math.copysign(1, column - centre) == math.copysign(1, offset)  # sign of yaw - pi/2
    assert columns == sorted(columns)
    # Camera above the head (smaller pitch) looks down on the face: the nose drops in the image.
    rows = [nose_centroid(head, FRONT + d, FRONT)[1] for d in (-0.3, 0.0, 0.3)]
    assert rows[0] > rows[1] > rows[2]


def test_eyes_and_hair_where_expected_from_the_front():
    head = heads(1, seed=2)[0]
    _, buffers = synthetic_heads.render_heads(head, [FRONT], [FRONT], 32, 12, return_buffers=True)
    part = buffers['part'][0]
    columns = torch.arange(part.shape[1]).expand_as(part).float()
    rows = torch.arange(part.shape[0])[:, None].expand_as(part).float()
    assert columns[part == synthetic_heads.LEFT_EYE].mean() < columns[part == synthetic_heads.RIGHT_EYE].mean()
    hair, eye, nose = (rows[part == index].mean() for index in
                       (synthetic_heads.HAIR, synthetic_heads.LEFT_EYE, synthetic_heads.NOSE))
    assert hair < eye < nose


def test_head_fully_inside_frame_at_extreme_poses():
    n = 12
    angle = torch.linspace(0, 2 * math.pi, n + 1)[:n]
    pitch = FRONT + 3 * 0.155 * torch.sin(angle)  # three standard deviations away
    yaw = FRONT + 3 * 0.3 * torch.cos(angle)
    images, buffers = synthetic_heads.render_heads(heads(n, seed=7), pitch, yaw, 32, 12, return_buffers=True)
    mask = buffers['mask'][:, 0]
    assert (mask.flatten(1).mean(1) > 0.15).all()  # the head is there and sizeable
    border = torch.cat([mask[:, 0], mask[:, -1], mask[:, :, 0], mask[:, :, -1]], 1)
    assert border.max() == 0
    depth = buffers['depth'][torch.isfinite(buffers['depth'])]
    assert depth.min() > 0.88 and depth.max() < 1.12  # inside the demo curriculum's ray bounds
    assert images.min() >= 0 and images.max() <= 1


# --- known geometry ----------------------------------------------------------------------------

def test_signed_distance_inside_outside_and_bounded():
    directions = torch.nn.functional.normalize(torch.randn(500, 3, generator=torch.Generator().manual_seed(0)), dim=1)
    for head in heads(20, seed=3):
        assert synthetic_heads.head_signed_distance(torch.zeros(1, 3), head).item() < -0.04
        assert (synthetic_heads.head_signed_distance(torch.tensor([[1.0, 0, 0], [0, -0.5, 0]]), head) > 0.3).all()
        assert (synthetic_heads.head_signed_distance(directions * synthetic_heads.BOUNDING_RADIUS, head) > 0).all()


def test_rendered_surface_is_the_signed_distance_zero_set():
    head = heads(1, seed=5)[0]
    _, buffers = synthetic_heads.render_heads(head, [1.4], [1.9], 24, 12, return_buffers=True)
    hit = torch.isfinite(buffers['depth'][0])
    points = buffers['points'][0][hit]
    assert len(points) > 100
    distance = synthetic_heads.head_signed_distance(points, head)
    assert distance.abs().max() < 2e-4
    # Slightly nearer the camera is outside, slightly farther is mostly inside.
    camera = torch.tensor([math.sin(1.4) * math.cos(1.9), math.cos(1.4), math.sin(1.4) * math.sin(1.9)])
    towards_camera = torch.nn.functional.normalize(camera - points, dim=1)
    assert (synthetic_heads.head_signed_distance(points + 2e-3 * towards_camera, head) > 0).all()
    assert (synthetic_heads.head_signed_distance(points - 2e-3 * towards_camera, head) < 0).float().mean() > 0.95


# --- the Synthetic dataset class -------------------------------------------------------------

def test_synthetic_dataset_auto_creates_default_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv('PIGAN_SYNTHETIC_PATH', raising=False)
    options = dict(synthetic_size=32, synthetic_count=4, camera=CAMERA_SETTINGS)
    dataset = datasets.make_dataset('Synthetic', 16, **options)
    assert 'generating 4 images' in capsys.readouterr().out
    folder = tmp_path / 'data' / 'synthetic_32'
    metadata = synthetic_files.load_metadata(str(folder))
    assert metadata['num_images'] == 4 and metadata['camera'] == CAMERA
    assert not [p for p in os.listdir(tmp_path / 'data') if 'partial' in p]

    image, pose = dataset[0]
    assert image.shape == (3, 16, 16) and image.min() >= -1 and image.max() <= 1
    assert pose.shape == (2,) and torch.isfinite(pose).all()
    dataset = datasets.Synthetic(None, 16, **options)
    stored = torch.tensor([[e['pitch'], e['yaw']] for e in metadata['images']])
    assert torch.equal(torch.stack([dataset[i][1] for i in range(4)]), stored)
    assert 'generating' not in capsys.readouterr().out  # complete folder is reused

    # An interrupted folder (no metadata) under the default name is regenerated.
    (folder / synthetic_files.METADATA_FILE).unlink()
    datasets.Synthetic(None, 16, **options)
    assert 'incomplete' in capsys.readouterr().out
    assert synthetic_files.load_metadata(str(folder)) is not None


def test_synthetic_dataset_from_explicit_path(small_dataset):
    dataset = datasets.make_dataset('Synthetic', dataset_path=str(small_dataset), img_size=32)
    image, pose = dataset[2]
    stored = read_png(small_dataset / '00002.png')
    assert torch.allclose(image, torch.from_numpy(stored.copy()).permute(2, 0, 1).float() / 127.5 - 1)
    entry = synthetic_files.load_metadata(str(small_dataset))['images'][2]
    assert torch.equal(pose, torch.tensor([entry['pitch'], entry['yaw']], dtype=torch.float32))
    with pytest.raises(datasets.DatasetError, match='not a complete synthetic dataset'):
        datasets.Synthetic(str(small_dataset / 'missing'), img_size=32)


# --- white background (SYNTHETIC_CPU, drawn by white_back) ------------------------------------

def test_white_background_keeps_the_same_heads(small_dataset, tmp_path):
    white = tmp_path / 'white'
    synthetic_files.make_synthetic_dataset(str(white), 6, img_size=32, seed=0, progress=False, batch_size=4,
                                           background='white', camera=CAMERA_SETTINGS)
    grey_meta, white_meta = synthetic_files.load_metadata(str(small_dataset)), synthetic_files.load_metadata(str(white))
    assert white_meta['background'] == 'white' and grey_meta['background'] == 'grey'
    for grey_entry, white_entry in zip(grey_meta['images'], white_meta['images']):
        assert (grey_entry['pitch'], grey_entry['yaw']) == (white_entry['pitch'], white_entry['yaw'])
        assert {k: v for k, v in grey_entry['params'].items() if k != 'background'} == \
               {k: v for k, v in white_entry['params'].items() if k != 'background'}
        grey, white_pixels = read_png(small_dataset / grey_entry['file']), read_png(white / white_entry['file'])
        # Corners are background: white there, a light grey (below white) in the grey set.
        corners = (slice(None, 2), slice(None, 2))
        assert (white_pixels[corners] == 255).all() and (grey[corners] < 250).all()
        # Pixels wholly on the head are the same in both sets (edges mix in the background).
        _, buffers = synthetic_heads.render_heads(grey_entry['params'], [grey_entry['pitch']], [grey_entry['yaw']],
                                                  32, 12, return_buffers=True)  # 2x supersampled, as the files
        on_head = torch.nn.functional.max_pool2d(
            (buffers['part'][0] == synthetic_heads.BACKGROUND).float()[None, None], 2)[0, 0].numpy() == 0
        assert on_head.sum() > 100
        assert np.abs(grey[on_head].astype(int) - white_pixels[on_head].astype(int)).max() <= 1


def test_default_folder_follows_background(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv('PIGAN_SYNTHETIC_PATH', raising=False)
    options = dict(synthetic_size=16, synthetic_count=2, camera=CAMERA_SETTINGS)
    dataset = datasets.make_dataset('Synthetic', 16, synthetic_background='white', **options)
    assert dataset.folder == os.path.join('data', 'synthetic_16_white')
    assert (read_png(tmp_path / dataset.folder / '00000.png')[0, 0] == 255).all()
    assert datasets.make_dataset('Synthetic', 16, **options).folder == os.path.join('data', 'synthetic_16')
    with pytest.raises(datasets.DatasetError, match="synthetic_background must be one of grey, white, got 'black'"):
        datasets.make_dataset('Synthetic', 16, synthetic_background='black', **options)


def test_an_unknown_curriculum_is_one_line(tmp_path):
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, str(root / 'synthetic_dataset.py'), '--curriculum', 'CelebB',
                             '--output_dir', str(tmp_path / 'out'), '--num_images', '2'],
                            cwd=root, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    assert result.stderr.strip().splitlines() == [
        result.stderr.strip()] and "unknown curriculum 'CelebB'" in result.stderr
    assert not (tmp_path / 'out').exists()
