"""Synthetic head dataset folders: poses drawn from the generator's camera distribution,
images rendered by synthetic.heads, and poses.json, which holds every image's pose and head.

poses.json's record (load_metadata's) is a file format: a plain dict, not a run's settings.
"""

import dataclasses
import json
import os
import random

import numpy as np
import torch
from tqdm import tqdm

import curriculums
from generators.camera_utils import sample_camera_angles
from settings import Settings
from synthetic.heads import render_heads, sample_head_params
from utils.media import save_image, to_uint8
from utils.files import atomic_write

METADATA_FILE = 'poses.json'
FORMAT_VERSION = 1
DEFAULT_CURRICULUM = 'SPATIALSIRENBASELINE'  # the synthetic demo's: its camera is the heads' default


def default_camera(curriculum=DEFAULT_CURRICULUM):
    """The camera distribution (settings.CameraDistribution) of a curriculum's first stage."""
    return Settings.at_step(curriculums.get(curriculum), 0).camera


def sample_poses(num, seed, h_mean, v_mean, h_stddev, v_stddev, sample_dist):
    """(pitch [num], yaw [num]) from the generator's camera distribution, reproducibly.

    Drawn one camera at a time, so a smaller dataset is a prefix of a larger one
    with the same seed.
    """
    python_state = random.getstate()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            random.seed(seed)  # the 'hybrid' distribution draws from Python's random
            angles = [sample_camera_angles(1, h_stddev, v_stddev, h_mean, v_mean, sample_dist, 'cpu')
                      for _ in range(num)]
    finally:
        random.setstate(python_state)
    if not angles:
        return torch.zeros(0), torch.zeros(0)
    return torch.cat([p for p, _ in angles]).reshape(-1), torch.cat([y for _, y in angles]).reshape(-1)


def make_synthetic_dataset(output_dir, num_images, img_size=64, seed=0, camera=None, progress=True, batch_size=32,
                           supersample=2, background='grey'):
    """Writes output_dir/00000.png ... and output_dir/poses.json; returns poses.json's record.

    camera: the settings.CameraDistribution poses are drawn from (None: default_camera()). poses.json is
    written last (atomically), so a folder without it is an interrupted run. Same arguments -> byte-identical
    files.
    """
    camera = default_camera() if camera is None else camera
    os.makedirs(output_dir, exist_ok=True)
    stale = os.path.join(output_dir, METADATA_FILE)
    if os.path.exists(stale):
        os.remove(stale)  # the folder is incomplete until the new record lands
    pitch, yaw = sample_poses(num_images, seed, camera.h_mean, camera.v_mean, camera.h_stddev, camera.v_stddev,
                              camera.sample_dist)
    heads = sample_head_params(num_images, np.random.default_rng(seed), background)
    width = max(5, len(str(num_images - 1)))
    names = [f'{i:0{width}d}.png' for i in range(num_images)]

    with torch.no_grad(), tqdm(total=num_images, desc=f'synthetic heads -> {output_dir}',
                               disable=not progress, unit='img') as bar:
        for start in range(0, num_images, batch_size):
            stop = min(start + batch_size, num_images)
            images = render_heads(heads[start:stop], pitch[start:stop], yaw[start:stop], img_size, camera.fov,
                                  supersample=supersample)
            for name, pixels in zip(names[start:stop], to_uint8(images, value_range=(0, 1))):
                save_image(pixels, os.path.join(output_dir, name))
            bar.update(stop - start)

    dataset_record = {
        'format_version': FORMAT_VERSION,
        'num_images': num_images,
        'img_size': img_size,
        'seed': seed,
        'supersample': supersample,
        'background': background,
        'camera': dataclasses.asdict(camera),
        'conventions': 'pitch from +y, yaw from +x towards +z, radians; camera at distance 1 looking '
                       'at the origin (generators/camera_utils.py); the head faces +z',
        'images': [{'file': name, 'pitch': float(p), 'yaw': float(y), 'params': head}
                   for name, p, y, head in zip(names, pitch.tolist(), yaw.tolist(), heads)],
    }
    with atomic_write(os.path.join(output_dir, METADATA_FILE), 'w') as f:
        json.dump(dataset_record, f)
    return dataset_record


def load_metadata(folder):
    """poses.json's record of a complete synthetic dataset folder, or None if it is incomplete."""
    path = os.path.join(folder, METADATA_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)
