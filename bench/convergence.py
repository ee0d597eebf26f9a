"""Convergence: train a recipe for a fixed wall-clock budget and measure 3D quality as it goes.

    python bench/convergence.py --curriculum SYNTHETIC_CPU --minutes 60 --every 10 --output_dir runs/cpu60

Training runs as train.py in chunks of --every minutes (each chunk resumes the
last one exactly). After each chunk the EMA generator is kept in snapshots/tMM/
and measured and drawn by a child process while the next chunk trains. The
clock counts training only, start-up included (the first chunk also creates the
synthetic dataset); measuring is timed separately. cpu_core_minutes is the CPU
time training used: on a quiet 2-core machine about twice the minutes, on a
shared one much less.

Each point (printed, and in curve.json / curve.csv): minutes, step, seconds per
step, load average, then the 3D metrics of metrics/geometry.py (pose error, shape
accuracy, shape coverage, multi-view error, pose-feature Frechet distance, each with
its floor and chance level; shape also with shape_*_floor_mesh, the floor of the
mesh path), and writes pictures to pictures/. curve.csv's columns are the union of
the points' keys, so curves measured before a value existed still read (blank cells).
Pictures:
    tMM_grid.png    4x4 samples from the front (psi 0.7)
    tMM_yaw.png     4 samples (rows) at yaw -0.5 .. +0.5 rad from the front (columns)
    tMM_mesh.png    one sample's mesh (marching cubes of its density, vertices refined on it), front and side
once real_heads.png and real_mesh.png (training images and a true head's surface), and at
the end yaw_sweeps.png: two samples' yaw sweeps at every point, one above the other.
"""

import argparse
import csv
import dataclasses
import functools
import json
import math
import os
import queue
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from checkpoints import load_generator  # noqa: E402
from datasets import default_synthetic_folder  # noqa: E402
from inference.meshing import density_grid, extract_mesh, generator_mesh  # noqa: E402
from inference.rendering import front_camera, inference_rendering, latent_from_seed, render_view, yaw_row  # noqa: E402
from utils.media import image_grid, save_image, to_uint8  # noqa: E402

PICTURE_SIZE = 64
MESH_LEVEL = 10  # density of the surface, as shape_extraction.py
YAW_OFFSETS = (-0.5, -0.25, 0.0, 0.25, 0.5)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--curriculum', default='SYNTHETIC_CPU')
    parser.add_argument('--minutes', type=float, default=60, help="training wall-clock budget")
    parser.add_argument('--every', type=float, default=10, help="minutes of training between measurements")
    parser.add_argument('--output_dir', default='runs/convergence', help="run, curve and pictures (created)")
    parser.add_argument('--num_samples', type=int, default=16, help="generated samples per metric")
    parser.add_argument('--metrics', default='auto',
                        help="comma-separated metric names, 'auto' (every 3D metric there is) or 'none'")
    parser.add_argument('--train_args', default='', help="extra train.py arguments, e.g. \"--set gen_lr=2e-4\"")
    parser.add_argument('--no_overlap', dest='overlap', action='store_false',
                        help="pause training while a point is measured (default: measure alongside training)")
    parser.add_argument('--measure', default=None, metavar='SNAPSHOT',
                        help="measure one kept snapshot (OUTPUT/snapshots/tMM) and exit, e.g. again with more "
                             "--num_samples; rewrites its point.json and the run's pictures for it")
    return parser.parse_args(argv)


# --- training in chunks -----------------------------------------------------------------

def train_chunk(args, run_dir, minutes):
    """Runs train.py for `minutes` (resuming run_dir if it holds a checkpoint).

    Returns (wall seconds, CPU seconds it used): on a shared machine the second says how
    much of the two cores training actually had.
    """
    command = [sys.executable, str(ROOT / 'train.py'), '--curriculum', args.curriculum, '--output_dir', str(run_dir),
               '--max_minutes', f'{minutes:.4f}', '--eval_freq', '0', '--sample_interval', '100000',
               '--model_save_interval', '1000000', '--log_every', '25', '--num_workers', '0', *args.train_args.split()]
    if (run_dir / 'generator.pth').exists():
        command += ['--load_dir', str(run_dir)]
    start, cpu_start = time.time(), children_cpu_seconds()
    with open(run_dir.parent / 'train.log', 'a') as log:
        result = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        sys.exit(f"error: train.py stopped with exit code {result.returncode}; see {run_dir.parent / 'train.log'}")
    return time.time() - start, children_cpu_seconds() - cpu_start


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def keep_snapshot(run_dir, folder):
    """Copies the generator and its EMA weights, so any point can be measured again later."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ('generator.pth', 'ema.pth'):
        shutil.copyfile(run_dir / name, folder / name)


def last_logged_step(run_dir):
    stats = run_dir / 'stats.jsonl'
    lines = stats.read_text().splitlines() if stats.exists() else []
    return json.loads(lines[-1])['step'] if lines else 0


def training_speed(run_dir, since_step):
    """(last step, median seconds per step of the log rows after since_step)."""
    rows = [json.loads(line) for line in (run_dir / 'stats.jsonl').read_text().splitlines()]
    recent = [row['sec_per_step'] for row in rows if row['step'] > since_step and row['step'] > 1]
    return rows[-1]['step'], (float(np.median(recent)) if recent else float('nan'))


# --- measuring --------------------------------------------------------------------------

def available_metrics(requested):
    """Names of the 3D metrics to run (none where metrics/geometry.py is not there)."""
    if requested == 'none':
        return ()
    try:
        from metrics.geometry import GEOMETRY_METRICS
    except ImportError:
        print("note: no 3D metrics in metrics/ (metrics/geometry.py); measuring speed and drawing only")
        return ()
    return GEOMETRY_METRICS if requested == 'auto' else tuple(requested.split(','))


def measure(generator, settings, dataset_dir, names, num_samples):
    """The 3D metrics (with their floors and chance levels) as plain floats."""
    if not names:
        return {}
    from metrics.geometry import geometry_metrics
    values = geometry_metrics(generator, settings, dataset_dir, names, num_samples=num_samples)
    return {key: round(float(value), 5) for key, value in values.items()}


def dataset_folder(settings):
    """The synthetic dataset the run trained on (train.py's default folder unless dataset_path is set)."""
    data = settings.data
    if data.dataset_path:
        return Path(data.dataset_path)
    return ROOT / default_synthetic_folder(data.synthetic_size, data.synthetic_background)


# --- pictures ---------------------------------------------------------------------------

def picture_rendering(settings):
    """The Rendering of pictures: PICTURE_SIZE pixels, twice the training samples, hierarchical."""
    rendering = inference_rendering(settings, PICTURE_SIZE, ray_step_multiplier=2)
    return dataclasses.replace(rendering, hierarchical_sample=True)


def sample_grid(generator, settings, seeds):
    front, rendering = front_camera(settings.camera), picture_rendering(settings)
    views = [render_view(generator, latent_from_seed(generator, seed, 0.7), front, rendering, 2400000)[0]
             for seed in seeds]
    return image_grid([to_uint8(view) for view in views], columns=4)


def yaw_sweep(generator, settings, seeds):
    views, rendering = [], picture_rendering(settings)
    for seed in seeds:
        latent = latent_from_seed(generator, seed, 0.7)
        views += [render_view(generator, latent, camera, rendering, 2400000)[0]
                  for camera in yaw_row(settings.camera, YAW_OFFSETS)]
    return image_grid([to_uint8(view) for view in views], columns=len(YAW_OFFSETS))


def shaded_mesh(vertices, faces, yaw, size=128, light=(0.4, 0.5, 1.0)):
    """uint8 [size, size, 3]: the mesh turned by yaw (radians) about the vertical axis, seen along -z,
    each face grey by its normal's angle to a light (painter's algorithm: far faces first)."""
    turn = np.array([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]])
    points = vertices @ turn.T
    triangles = points[faces]  # [F, 3 corners, xyz]
    normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    light = np.asarray(light) / np.linalg.norm(light)
    shade = (0.25 + 0.75 * np.abs(normals @ light)) * 255
    scale = size / (2 * 0.12)  # the heads fit in radius 0.1; a little margin
    xy = np.stack([triangles[..., 0] * scale + size / 2, size / 2 - triangles[..., 1] * scale], -1)
    image = Image.new('RGB', (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for index in np.argsort(triangles[..., 2].mean(1)):  # +z is towards the viewer: draw it last
        grey = int(shade[index])
        draw.polygon([tuple(corner) for corner in xy[index]], fill=(grey, grey, grey))
    return np.asarray(image)


def mesh_picture(volume, level, cube_size, make_mesh=extract_mesh):
    """The surface of a [z, y, x] volume at level, shaded from the front and from the side;
    make_mesh(volume, level, cube_size) -> (vertices, faces)."""
    try:
        vertices, faces = make_mesh(volume, level, cube_size)[:2]
    except ValueError:  # no surface yet: a blank picture says so
        return np.full((128, 256, 3), 255, np.uint8)
    return image_grid([shaded_mesh(vertices, faces, 0.0), shaded_mesh(vertices, faces, math.pi / 2)])


def generated_mesh_picture(generator, seed, resolution=64, cube_size=0.3):
    """(picture, density statistics): a fog that never reaches MESH_LEVEL draws blank, and the
    statistics tell a fog (high median density) from empty space."""
    latent = latent_from_seed(generator, seed, 0.7)
    volume = density_grid(generator, latent, resolution, cube_size)
    stats = {'mesh_density_max': float(volume.max()), 'mesh_density_median': float(np.median(volume))}
    # Vertices on the density itself (as shape_extraction.py): plain marching cubes would draw the grid's terraces.
    # Every piece is drawn, floaters included: the picture shows what the shape metric scores.
    make_mesh = functools.partial(generator_mesh, generator, latent, max_batch_size=2400000)
    return mesh_picture(volume, MESH_LEVEL, cube_size, make_mesh), stats


def real_mesh_picture(dataset_dir, resolution=64, cube_size=0.3):
    """The first training head's true surface (its closed-form signed distance), drawn as the samples'."""
    from metrics.heads import TrueHeads
    head = json.loads((dataset_dir / 'poses.json').read_text())['images'][0]['params']
    volume, level = TrueHeads([head], fov=12).surface_volume(0, resolution, cube_size)
    return mesh_picture(volume, level, cube_size)


def real_heads_picture(dataset_dir, count=16):
    entries = json.loads((dataset_dir / 'poses.json').read_text())['images'][:count]
    images = [np.asarray(Image.open(dataset_dir / entry['file']).convert('RGB').resize((PICTURE_SIZE,) * 2))
              for entry in entries]
    return image_grid(images, columns=4)


def draw_pictures(generator, settings, folder, tag):
    """Writes the grid, yaw sweep and mesh pictures; returns the mesh's density statistics."""
    save_image(sample_grid(generator, settings, range(16)), folder / f'{tag}_grid.png')
    save_image(yaw_sweep(generator, settings, range(4)), folder / f'{tag}_yaw.png')
    mesh, stats = generated_mesh_picture(generator, seed=0)
    save_image(mesh, folder / f'{tag}_mesh.png')
    return {key: round(value, 3) for key, value in stats.items()}


def sweep_summary(pictures, tags, rows=2):
    """uint8 image: the first `rows` samples of each point's yaw sweep, one labelled band per point."""
    bands = []
    for tag in tags:
        sweep = np.asarray(Image.open(pictures / f'{tag}_yaw.png').convert('RGB'))[:rows * PICTURE_SIZE]
        label = Image.new('RGB', (sweep.shape[1], 14), (255, 255, 255))
        ImageDraw.Draw(label).text((2, 1), f'{int(tag[1:])} min', fill=(0, 0, 0))
        bands += [np.asarray(label), sweep]
    return np.concatenate(bands)


# --- the curve --------------------------------------------------------------------------

def write_curve(output_dir, points):
    """curve.json (a list of points) and curve.csv (one row per point)."""
    (output_dir / 'curve.json').write_text(json.dumps(points, indent=1))
    keys = list(dict.fromkeys(key for point in points for key in point))
    with open(output_dir / 'curve.csv', 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(points)


def load_average():
    return os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')


def measure_snapshot(folder, num_samples, metric_names):
    """Measures and draws the snapshot in folder (training.json beside it); writes folder/point.json."""
    point = json.loads((folder / 'training.json').read_text())
    start = time.time()
    generator, settings = load_generator(folder / 'generator.pth')
    dataset_dir = dataset_folder(settings)
    pictures = folder.parent.parent / 'pictures'
    if not (pictures / 'real_heads.png').exists():
        save_image(real_heads_picture(dataset_dir), pictures / 'real_heads.png')
        save_image(real_mesh_picture(dataset_dir), pictures / 'real_mesh.png')
    torch.manual_seed(0)
    point.update(measure(generator, settings, dataset_dir, available_metrics(metric_names), num_samples))
    with torch.no_grad():
        point.update(draw_pictures(generator, settings, pictures, folder.name))
    point['measure_minutes'] = round((time.time() - start) / 60, 2)
    (folder / 'point.json').write_text(json.dumps(point))
    print(json.dumps(point), flush=True)


class Measurer:
    """Measures snapshots one at a time in a child process, while training goes on
    (the measurement's CPU use slows training a little; --no_overlap waits instead)."""

    def __init__(self, args):
        self.args, self.jobs = args, queue.SimpleQueue()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while (folder := self.jobs.get()) is not None:
            command = [sys.executable, str(Path(__file__).resolve()), '--measure', str(folder),
                       '--num_samples', str(self.args.num_samples), '--metrics', self.args.metrics]
            with open(folder / 'measure.log', 'w') as log:
                subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

    def submit(self, folder):
        self.jobs.put(folder)

    def finish(self):
        self.jobs.put(None)
        self.thread.join()


def main(argv=None):
    args = parse_args(argv)
    if args.measure:
        return measure_snapshot(Path(args.measure), args.num_samples, args.metrics)
    output_dir = Path(args.output_dir)
    run_dir = output_dir / 'run'
    run_dir.mkdir(parents=True, exist_ok=True)
    measurer = Measurer(args)
    folders, trained, cpu_used = [], 0.0, 0.0
    last_step = last_logged_step(run_dir)  # a resumed or copied run: time only the steps trained here
    while trained < args.minutes * 60 - 1:
        chunk = min(args.every * 60, args.minutes * 60 - trained)
        wall, cpu = train_chunk(args, run_dir, chunk / 60)
        trained, cpu_used = trained + wall, cpu_used + cpu
        step, sec_per_step = training_speed(run_dir, last_step)
        folder = output_dir / 'snapshots' / f't{round(trained / 60):02d}'
        keep_snapshot(run_dir, folder)
        # cpu_core_minutes / 2: the minutes two unshared cores would have needed at full use.
        training = {'minutes': round(trained / 60, 2), 'cpu_core_minutes': round(cpu_used / 60, 2), 'step': step,
                    'sec_per_step': round(sec_per_step, 3) if math.isfinite(sec_per_step) else None, 'load_average': round(load_average(), 2)}
        (folder / 'training.json').write_text(json.dumps(training))
        print(json.dumps(training), flush=True)
        folders.append(folder)
        last_step = step
        measurer.submit(folder)
        if not args.overlap:
            measurer.finish()
            measurer = Measurer(args)
    measurer.finish()
    points = [json.loads((folder / 'point.json').read_text()) for folder in folders
              if (folder / 'point.json').exists()]
    write_curve(output_dir, points)
    drawn = [folder.name for folder in folders if (output_dir / 'pictures' / f'{folder.name}_yaw.png').exists()]
    if drawn:
        save_image(sweep_summary(output_dir / 'pictures', drawn), output_dir / 'pictures' / 'yaw_sweeps.png')
    for folder in folders:
        if not (folder / 'point.json').exists():
            print(f"note: measuring {folder} failed; see {folder / 'measure.log'}")
    print(f"curve: {output_dir / 'curve.csv'}; pictures: {output_dir / 'pictures'}")


if __name__ == '__main__':
    main()
