"""3D-quality metrics on data with known geometry and poses: the synthetic heads.

    pose            mean |yaw| and |pitch| error (degrees) of the pose regressor on samples
                    rendered at cameras drawn from the curriculum's pose distribution
    pose_fd         Fréchet distance on the pose regressor's penultimate features (not FID)
    shape           median distance (world units) between a sample's mesh and the nearest
                    true head of the family: accuracy, completeness and their mean; and
                    shape_coverage, the share of held-out reference heads that are the
                    nearest of some sample (COV: a collapsed generator scores 1/n)
    mv_consistency  masked photometric error (0-1 colour units) between one view and
                    another warped onto it with the rendered depth

Every value comes with <name>_floor (what the real data scores) and <name>_chance (what
a trivial generator scores). Floors score held-out true heads the way samples are
scored: pose renders them at the same camera draws and size; shape adds
shape_*_floor_mesh, the same heads as a sharp density through the same marching cubes
(what the grid lets a generator reach). Each metric is a function of (generator, its settings.Settings,
synthetic dataset folder, number of samples) returning a dict of floats; the
same functions are registered in metrics/registry.py for eval_metrics.py and training.
The generator is a pi-GAN generator or any head source of metrics/heads.py.
"""

import math
from pathlib import Path

import numpy as np
import torch

from datasets import DatasetError, Synthetic
from generators.camera_utils import Cameras
from synthetic import dataset as synthetic_files

from . import multiview, pose, pose_regressor, shape
from .heads import DEFAULT_SURFACE_LEVEL, GeneratorHeads, OccupancyHeads, TrueHeads
from .registry import GeneratorInputs, calc_metric, register_metric

BANK_SIZE = 256   # true heads that samples' shapes are matched against

_references = {}


class SyntheticReference:
    """What a synthetic dataset folder gives the metrics: its pose regressor, a bank of true
    heads (from the regressor's training part) and held-out heads for the floors."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.dataset_record = synthetic_files.load_metadata(self.folder)
        if self.dataset_record is None:
            raise DatasetError(f"{self.folder} is not a complete synthetic dataset (no "
                               f"{synthetic_files.METADATA_FILE}); create it with: "
                               f"python synthetic_dataset.py --output_dir {self.folder}")
        params = [entry['params'] for entry in self.dataset_record['images']]
        train, held_out = pose_regressor.split(len(params), pose_regressor.RegressorSettings.holdout_fraction)
        self.bank_heads = [params[i] for i in train[:BANK_SIZE].tolist()]
        self.held_out_heads = TrueHeads([params[i] for i in held_out.tolist()], self.dataset_record['camera']['fov'])
        self._regressor = self._bank = None
        self._memo = {}

    @property
    def regressor(self):
        if self._regressor is None:
            self._regressor = pose_regressor.load_or_train(self.folder)
        return self._regressor

    @property
    def bank(self):
        if self._bank is None:
            self._bank = shape.HeadBank(self.bank_heads)
        return self._bank

    def memo(self, key, compute):
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def floor_count(self, num_samples):
        return min(num_samples, len(self.held_out_heads))

    def coverage_count(self, num_samples):
        """Samples and reference heads of shape_coverage: the held-out heads hold two disjoint
        sets of this many (the floor's heads and the references)."""
        return min(num_samples, len(self.held_out_heads) // 2)

    def coverage_references(self, count):
        """The reference heads of shape_coverage (a HeadBank; None for none): held-out heads
        count .. 2 count - 1, disjoint from the floor's first count."""
        if not count:  # fewer than two held-out heads
            return None
        return self.memo(('coverage_references', count),
                         lambda: shape.HeadBank(self.held_out_heads.heads[count:2 * count]))


def reference(dataset_dir):
    """The SyntheticReference of a folder, built once per process (and again if poses.json changes)."""
    path = Path(dataset_dir).resolve()
    record_file = path / synthetic_files.METADATA_FILE
    key = (str(path), record_file.stat().st_mtime_ns if record_file.is_file() else None)
    if key not in _references:
        _references[key] = SyntheticReference(path)
    return _references[key]


def as_heads(generator, settings, psi=1.0, max_batch_size=2400000, surface_level=DEFAULT_SURFACE_LEVEL, **unused):
    """A GeneratorHeads around a pi-GAN generator (or its DDP wrapper); anything else is taken
    to be a head source already (metrics/heads.py)."""
    if not isinstance(getattr(generator, 'module', generator), torch.nn.Module):
        return generator
    return GeneratorHeads(generator, settings, psi=psi, max_batch_size=max_batch_size, surface_level=surface_level)


def _evaluation(fn):
    """Runs a metric with the RNG untouched (training's stream goes on as if nothing happened)
    and the generator in eval mode, restored afterwards."""
    def wrapped(generator, settings, dataset_dir, num_samples=64, seed=0, **options):
        module = getattr(generator, 'module', generator)
        was_training = getattr(module, 'training', None)
        devices = [module.device] if getattr(module, 'device', torch.device('cpu')).type == 'cuda' else []
        if was_training is not None:
            module.eval()
        try:
            with torch.random.fork_rng(devices=devices):
                return fn(as_heads(generator, settings, **options), settings, reference(dataset_dir), num_samples,
                          seed, options)
        finally:
            if was_training:
                module.train()
    wrapped.__name__, wrapped.__doc__ = fn.__name__, fn.__doc__
    return wrapped


def _posed_renders(heads, settings, ref, num_samples, seed, options):
    """Renders shared by pose and pose_fd (options['cache'] keeps them between the two)."""
    cache = options.get('cache', {})
    key = ('posed', num_samples, seed)
    if key not in cache:
        cache[key] = pose.render_at_random_poses(heads, settings.camera, num_samples,
                                                 ref.regressor.network.input_size, seed)
    return cache[key]


@_evaluation
def pose_metric(heads, settings, ref, num_samples, seed, options):
    """pose_yaw_deg and pose_pitch_deg, with floors (held-out true heads, never trained on by the
    regressor, rendered at the same camera draws and size) and chance levels (the best image that
    does not turn with the camera)."""
    images, true_poses = _posed_renders(heads, settings, ref, num_samples, seed, options)
    size = ref.regressor.network.input_size
    # The floor's camera draws come from the pose distribution (a frozen dataclass): part of its key.
    floor = ref.memo(('pose_floor', num_samples, seed, size, settings.camera), lambda: pose.pose_floor(
        ref.regressor, ref.held_out_heads, settings.camera, num_samples, size, seed))
    return pose.pose_accuracy(ref.regressor, images, true_poses, floor)


@_evaluation
def pose_fd_metric(heads, settings, ref, num_samples, seed, options):
    """pose_fd: Fréchet distance of pose-regressor features to the training images'."""
    images, _ = _posed_renders(heads, settings, ref, num_samples, seed, options)
    return pose.pose_fd(ref.regressor, images)


@_evaluation
def shape_metric(heads, settings, ref, num_samples, seed, options):
    """shape_accuracy/_completeness/_distance (world units) and shape_coverage (0-1).

    Floors: held-out true heads through the same meshing and matching (shape_*_floor from
    their signed distance, shape_*_floor_mesh from a sharp density); for coverage, as many
    held-out heads again against the same references. Chance: the sphere around the origin
    of the best radius; for coverage 1/n, a generator that makes one head for every sample.
    Coverage compares the first shape_coverage_num samples (capped at half the held-out heads).
    """
    count, covered = ref.floor_count(num_samples), ref.coverage_count(num_samples)
    distances, nearest = shape.shape_distances(heads, range(num_samples), ref.bank,
                                               ref.coverage_references(covered), covered)
    results = shape.median_distances(distances)
    results.update(ref.memo(('shape_floor', count), lambda: _shape_floors(ref, count, covered)))
    radius, chance = ref.memo('shape_chance', lambda: shape.best_sphere(ref.bank))
    results.update(zip(('shape_accuracy_chance', 'shape_completeness_chance', 'shape_distance_chance'), chance))
    results['shape_missing'] = float(np.mean(~np.isfinite(distances[:, 0])))  # samples with no surface
    results['shape_chance_sphere_radius'] = radius
    results['shape_coverage'] = shape.coverage(nearest, covered) if covered else math.nan
    results['shape_coverage_chance'] = 1 / covered if covered else math.nan
    results['shape_coverage_num'] = covered
    return results


def _shape_floors(ref, count, covered):
    """shape_*_floor, shape_*_floor_mesh and shape_coverage_floor of the first count held-out heads."""
    distances, nearest = shape.shape_distances(ref.held_out_heads, range(count), ref.bank,
                                               ref.coverage_references(covered), covered)
    floors = shape.median_distances(distances, '_floor')
    floors['shape_coverage_floor'] = shape.coverage(nearest, covered) if covered else math.nan
    sharp = OccupancyHeads(ref.held_out_heads.heads, ref.held_out_heads.fov)
    floors.update(shape.median_distances(shape.shape_distances(sharp, range(count), ref.bank)[0], '_floor_mesh'))
    return floors


@_evaluation
def mv_consistency_metric(heads, settings, ref, num_samples, seed, options):
    """mv_consistency (mean |colour| error, 0-1 units, over head pixels both views see) and
    mv_coverage (the fraction of view A's head pixels compared). Floor: the true heads'
    own value; chance: true heads whose image does not turn with the camera."""
    img_size = options.get('img_size') or ref.dataset_record['img_size']
    camera_a, camera_b = multiview.camera_pair(settings.camera)
    error, coverage = multiview.photometric_error(heads, list(range(num_samples)), camera_a, camera_b, img_size)
    count = ref.floor_count(num_samples)

    def reference_values(source):
        return multiview.photometric_error(source, list(range(count)), camera_a, camera_b, img_size)

    key = (count, img_size, *camera_a.tolist(), *camera_b.tolist())
    floor, floor_coverage = ref.memo(('mv_floor',) + key, lambda: reference_values(ref.held_out_heads))
    chance, _ = ref.memo(('mv_chance',) + key, lambda: reference_values(FixedView(ref.held_out_heads, camera_a)))
    return {'mv_consistency': error, 'mv_consistency_floor': floor, 'mv_consistency_chance': chance,
            'mv_coverage': coverage, 'mv_coverage_floor': floor_coverage}


class FixedView:
    """A head source whose image does not turn with the camera: every view is the one from `camera`."""

    def __init__(self, heads, camera):
        self.heads, self.camera = heads, camera

    def render(self, indices, cameras, img_size):
        return self.heads.render(indices, Cameras.cat([self.camera] * len(indices)), img_size)

    def surface_volume(self, index, resolution, cube_size):
        return self.heads.surface_volume(index, resolution, cube_size)


METRIC_FUNCTIONS = {'pose': pose_metric, 'pose_fd': pose_fd_metric, 'shape': shape_metric,
                    'mv_consistency': mv_consistency_metric}
GEOMETRY_METRICS = tuple(METRIC_FUNCTIONS)


def _register(name, fn):
    @register_metric(name, inputs=GeneratorInputs)
    def registered(inputs):
        return fn(inputs.generator, inputs.settings, inputs.dataset_dir, inputs.num_samples, inputs.seed,
                  cache=inputs.cache, **inputs.options)
    return registered


for _name, _fn in METRIC_FUNCTIONS.items():
    _register(_name, _fn)


def geometry_metrics(generator, settings, dataset_dir, names=GEOMETRY_METRICS, num_samples=64, seed=0, **options):
    """All the named metrics, from the registry, in one dict: one GeneratorInputs, so renders are shared
    between pose and pose_fd. options: img_size, psi, max_batch_size, surface_level."""
    inputs = GeneratorInputs(generator, settings, dataset_dir, num_samples, seed, options)
    results = {}
    for name in names:
        results.update(calc_metric(name, inputs))
    return results


def synthetic_folder(settings, dataset_dir=None):
    """The synthetic dataset folder of a run's settings (dataset_dir if given), created if it is the
    default one and missing, as training would."""
    if dataset_dir:
        return str(dataset_dir)
    if settings.data.dataset != 'Synthetic':
        raise DatasetError(f"the geometry metrics need the synthetic heads; this run's dataset is "
                           f"{settings.data.dataset!r}: pass --dataset_dir (a synthetic_dataset.py folder)")
    return Synthetic.from_settings(settings, settings.data.synthetic_size).folder


SUMMARY_VALUES = ('pose_yaw_deg', 'pose_pitch_deg', 'pose_fd', 'shape_distance', 'shape_accuracy',
                  'shape_completeness', 'shape_coverage', 'mv_consistency')


def summary_lines(results):
    """One line per geometry value present: value, floor and chance side by side (and the
    mesh path's floor where there is one)."""
    lines = []
    for name in SUMMARY_VALUES:
        if name in results:
            line = (f"{name:<20} {results[name]:10.4g}   floor {results[f'{name}_floor']:10.4g}   "
                    f"chance {results[f'{name}_chance']:10.4g}")
            if f'{name}_floor_mesh' in results:  # absent from results saved before it existed
                line += f"   mesh floor {results[f'{name}_floor_mesh']:.4g}"
            if name == 'mv_consistency':
                line += f"   (coverage {results['mv_coverage']:.2f}, real {results['mv_coverage_floor']:.2f})"
            if name == 'shape_distance':
                line += f"   ({results['shape_missing']:.0%} of samples without a surface)"
            if name == 'shape_coverage':
                line += f"   ({results['shape_coverage_num']} samples against as many held-out heads)"
            lines.append(line)
    return lines
