"""Geometry metrics on the synthetic heads: each gets its floor and chance right on controlled inputs.

The "generators" here are the true heads themselves (metrics.heads.TrueHeads), the same
heads with an image that does not turn with the camera (FixedView), turned by a wrong
yaw, or a sphere; one test runs a tiny pi-GAN checkpoint through the same code. Three
broken sources (a camera-ignoring card, a collapse to one head, views twice as far
apart) must each be caught, by a margin, by the metrics that can see them.
"""

import json
import math

import numpy as np
import pytest
import torch

import curriculums
from checkpoints import load_generator
from metrics import GeneratorInputs, MetricInputs, calc_metric, geometry, multiview, pose_regressor, shape
from inference.rendering import front_camera
from generators.camera_utils import Cameras
from metrics.heads import GeneratorHeads, OccupancyHeads, SphereHeads, TrueHeads, signed_distance_grid
from settings import Settings
from synthetic import dataset as synthetic_files
from synthetic import heads as synthetic_heads

NUM_IMAGES = 200   # 180 train the regressor, 20 are held out
SETTINGS = Settings.at_step(curriculums.get(synthetic_files.DEFAULT_CURRICULUM), 0)  # the heads' own camera
CAMERA = SETTINGS.camera


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp('geometry') / 'synthetic_32'
    synthetic_files.make_synthetic_dataset(str(folder), NUM_IMAGES, img_size=32, seed=0, progress=False, camera=CAMERA)
    return folder


@pytest.fixture(scope='module')
def reference(dataset):
    return geometry.reference(dataset)


@pytest.fixture(scope='module')
def new_heads():
    """Heads the dataset never showed (another seed), as a perfect generator would make them."""
    return TrueHeads(synthetic_heads.sample_head_params(24, np.random.default_rng(123)), CAMERA.fov)


class WrongYaw:
    """Heads rendered at a yaw off by `offset` radians from the camera asked for."""

    def __init__(self, heads, offset):
        self.heads, self.offset = heads, offset

    def render(self, indices, cameras, img_size):
        return self.heads.render(indices, cameras.turned(yaw=self.offset), img_size)


def pose_values(source, dataset, num_samples=20):
    return geometry.geometry_metrics(source, SETTINGS, dataset, ('pose', 'pose_fd'), num_samples=num_samples)


# --- pose regressor --------------------------------------------------------------------------

def test_regressor_is_cached_by_content(dataset, reference):
    regressor = reference.regressor
    files = sorted(dataset.glob('pose_regressor-*.pt'))
    assert len(files) == 1
    saved = torch.load(files[0], weights_only=True)  # plain state dict, numbers and tensors
    assert saved['format'] == pose_regressor.FORMAT and 'trunk.0.weight' in saved['state_dict']
    # The floor is the held-out error, and well below what a constant guess scores.
    assert saved['info']['num_held_out'] == NUM_IMAGES // 10
    assert 0 < regressor.training_record['floor_yaw_deg'] < 10 and 0 < regressor.training_record['floor_pitch_deg'] < 6

    mtime = files[0].stat().st_mtime_ns
    again = pose_regressor.load_or_train(dataset, progress=False)
    assert files[0].stat().st_mtime_ns == mtime  # loaded, not trained again
    assert again.training_record['floor_yaw_deg'] == regressor.training_record['floor_yaw_deg']
    # Any change to the images is a new dataset: a new hash, so a new file.
    digest = pose_regressor.dataset_digest(dataset, pose_regressor.RegressorSettings())
    image = dataset / '00000.png'
    original = image.read_bytes()
    try:
        image.write_bytes(original + b'\0')
        assert pose_regressor.dataset_digest(dataset, pose_regressor.RegressorSettings()) != digest
    finally:
        image.write_bytes(original)


def test_regressor_reads_true_poses(reference):
    yaws = [math.pi / 2 - 0.3, math.pi / 2 - 0.1, math.pi / 2 + 0.1, math.pi / 2 + 0.3]
    images = synthetic_heads.render_heads(reference.held_out_heads.heads[:4], [math.pi / 2] * 4, yaws, 32, 12)
    predicted, features = reference.regressor.predict(images * 2 - 1)
    assert features.shape == (4, pose_regressor.RegressorSettings.feature_dim)
    assert (predicted[:, 0].diff() > 0).all()  # yaw increases with the camera's
    assert (predicted[:, 0] - torch.tensor([-0.3, -0.1, 0.1, 0.3]) - math.pi / 2).abs().max() < math.radians(12)


# --- pose and pose_fd -----------------------------------------------------------------------------

def test_pose_of_true_heads_is_near_the_floor(dataset, new_heads):
    values = pose_values(new_heads, dataset)
    for angle in ('yaw', 'pitch'):
        floor, chance = values[f'pose_{angle}_deg_floor'], values[f'pose_{angle}_deg_chance']
        assert values[f'pose_{angle}_deg'] < (floor + chance) / 2
    assert values['pose_fd'] < values['pose_fd_chance'] / 3


def test_pose_chance_is_an_image_that_does_not_turn(dataset, new_heads):
    values = pose_values(geometry.FixedView(new_heads, front_camera(CAMERA)), dataset)
    for angle in ('yaw', 'pitch'):
        assert values[f'pose_{angle}_deg'] > 0.8 * values[f'pose_{angle}_deg_chance']
    # Chance is the mean absolute deviation of the drawn poses: sigma * sqrt(2 / pi) for gaussians.
    assert values['pose_yaw_deg_chance'] == pytest.approx(math.degrees(0.3 * math.sqrt(2 / math.pi)), rel=0.35)


def test_wrong_yaw_is_caught(dataset, new_heads):
    right = pose_values(new_heads, dataset)
    wrong = pose_values(WrongYaw(new_heads, 0.3), dataset)
    # 0.3 rad is 17 degrees; this small test regressor reads less beyond the poses it saw.
    assert wrong['pose_yaw_deg'] > right['pose_yaw_deg'] + 5
    assert wrong['pose_yaw_deg'] > 1.5 * wrong['pose_yaw_deg_floor']
    assert wrong['pose_pitch_deg'] < right['pose_pitch_deg'] + 2  # pitch was right


def test_pose_fd_chance_is_the_frechet_distance_of_one_repeated_image(reference):
    from metrics.pose import frechet_to_train, pose_fd

    image = reference.regressor.training_record['mean_image'][None].expand(8, -1, -1, -1)
    values = pose_fd(reference.regressor, image)
    _, features = reference.regressor.predict(image[:1])
    assert values['pose_fd'] == pytest.approx(values['pose_fd_chance'], rel=1e-3)
    assert frechet_to_train(reference.regressor, features.expand(8, -1)) == pytest.approx(values['pose_fd_chance'],
                                                                                           rel=1e-3)


# --- shape ------------------------------------------------------------------------------------------

def test_bank_points_lie_on_their_heads(reference):
    head = reference.bank.params[0]
    assert synthetic_heads.head_signed_distance(reference.bank.points[0], head).abs().max() < 2e-5


def test_a_bank_head_matches_itself(reference):
    mesh = shape.sample_mesh(TrueHeads(reference.bank.params[:1], 12), 0)
    accuracy, completeness, _ = reference.bank.match(shape.Surface(*mesh))
    # Marching cubes on a 48^3 grid of a 0.24 cube (5 mm steps) misses a little of the thin hair edge.
    assert accuracy < 1e-4 and completeness < 6e-4


def test_shape_of_true_heads_is_near_the_floor_and_a_sphere_at_chance(dataset, new_heads):
    values = geometry.shape_metric(new_heads, SETTINGS, dataset, num_samples=4)
    assert values['shape_distance'] < 1.5 * values['shape_distance_floor']
    assert values['shape_distance'] < 0.75 * values['shape_distance_chance']
    assert values['shape_missing'] == 0
    lines = {line.split()[0]: line for line in geometry.summary_lines(values)}
    assert f"floor {values['shape_coverage_floor']:10.4g}" in lines['shape_coverage']
    assert f"mesh floor {values['shape_distance_floor_mesh']:.4g}" in lines['shape_distance']
    radius = values['shape_chance_sphere_radius']
    assert 0.06 < radius < 0.075
    sphere = geometry.shape_metric(SphereHeads(radius), SETTINGS, dataset, num_samples=2)
    assert sphere['shape_distance'] == pytest.approx(values['shape_distance_chance'], rel=1e-6)
    wrong_size = geometry.shape_metric(SphereHeads(radius + 0.01), SETTINGS, dataset, num_samples=2)
    assert wrong_size['shape_distance'] > values['shape_distance_chance'] + 0.002


def test_no_surface_scores_infinity(dataset):
    values = geometry.shape_metric(SphereHeads(0.5), SETTINGS, dataset, num_samples=2)  # outside the cube
    assert values['shape_missing'] == 1 and values['shape_distance'] == math.inf
    assert values['shape_coverage'] == 0  # no surface is nearest to anything


# --- multi-view consistency -------------------------------------------------------------------------

def test_warp_to_the_same_camera_is_the_identity(new_heads):
    camera = front_camera(CAMERA)
    pixels, depth = new_heads.render([0], camera, 32)
    warped, mask = multiview.warp(pixels[0], depth[0], depth[0], camera, camera)
    assert mask.float().mean() > 0.3
    assert (warped - pixels[0])[:, mask].abs().max() < 1e-4


def test_multiview_floor_chance_and_true_heads(dataset, new_heads):
    values = geometry.mv_consistency_metric(new_heads, SETTINGS, dataset, num_samples=6, img_size=32)
    assert values['mv_consistency'] < 1.5 * values['mv_consistency_floor']
    assert values['mv_consistency_chance'] > 3 * values['mv_consistency_floor']
    assert values['mv_coverage'] > 0.7 and values['mv_coverage_floor'] > 0.7
    front = Cameras(yaw=math.pi / 2, pitch=math.pi / 2, fov=12)
    fixed = geometry.mv_consistency_metric(geometry.FixedView(new_heads, front), SETTINGS, dataset, num_samples=6,
                                           img_size=32)
    assert fixed['mv_consistency'] > 3 * values['mv_consistency']


# --- registry and a real generator -----------------------------------------------------------------

def test_registry_checks_input_kind(dataset, new_heads):
    with pytest.raises(TypeError, match='GeneratorInputs'):
        calc_metric('pose', MetricInputs(None, None, None, None, None))
    values = calc_metric('pose', GeneratorInputs(new_heads, SETTINGS, str(dataset), num_samples=4))
    assert set(values) >= {'pose_yaw_deg', 'pose_yaw_deg_floor', 'pose_yaw_deg_chance'}


def test_tiny_generator_renders_and_scores(tmp_path, dataset):
    from checkpoints import load_generator
    from tiny_checkpoint import make_tiny_run

    path = make_tiny_run(tmp_path)
    generator, settings = load_generator(path)
    heads = GeneratorHeads(generator, settings)
    pixels, depth = heads.render([0, 1], Cameras.cat([front_camera(settings.camera)] * 2), 16)
    assert pixels.shape == (2, 3, 16, 16) and depth.shape == (2, 16, 16)
    assert pixels.min() >= -1 and pixels.max() <= 1
    rendering = settings.rendering
    bin_width = (rendering.ray_end - rendering.ray_start) / (rendering.num_steps - 1)  # ray jitter
    assert rendering.ray_start - bin_width <= depth.min() and depth.max() <= rendering.ray_end + bin_width
    volume, level = heads.surface_volume(0, 8, 0.24)
    assert volume.shape == (8, 8, 8) and volume.min() >= 0 and level == 10

    generator.train()
    rng_before = torch.get_rng_state()
    values = geometry.pose_metric(generator, settings, dataset, num_samples=4)
    assert torch.equal(torch.get_rng_state(), rng_before)  # training's random stream is untouched
    assert generator.training  # rendered in eval mode, then restored
    # An untrained generator's image barely turns: it scores about chance, far above the floor.
    assert values['pose_yaw_deg'] > 2 * values['pose_yaw_deg_floor']
    json.dumps(values)  # plain floats


def test_eval_metrics_prints_values_with_floor_and_chance(tmp_path, dataset, capsys):
    import eval_metrics
    from tiny_checkpoint import make_tiny_run

    path = make_tiny_run(tmp_path)
    report = eval_metrics.main([str(path), '--metrics', 'pose,pose_fd,mv_consistency', '--geometry_samples', '3',
                                '--dataset_dir', str(dataset), '--device', 'cpu'])
    printed = capsys.readouterr().out
    for name in ('pose_yaw_deg', 'pose_pitch_deg', 'pose_fd', 'mv_consistency'):
        line = next(line for line in printed.splitlines() if line.startswith(name + ' '))
        assert f"floor {report['results'][name + '_floor']:10.4g}" in line
        assert f"chance {report['results'][name + '_chance']:10.4g}" in line
    saved = json.loads((tmp_path / 'evaluation' / 'metrics.json').read_text())
    assert saved['results']['pose_yaw_deg'] == pytest.approx(report['results']['pose_yaw_deg'])
    assert 'fid' not in saved['results']

    # --img_size sets mv_consistency's render size: its floor is the true heads' at that size.
    small = eval_metrics.main([str(path), '--metrics', 'mv_consistency', '--geometry_samples', '3',
                               '--dataset_dir', str(dataset), '--device', 'cpu', '--img_size', '16'])
    camera_a, camera_b = multiview.camera_pair(load_generator(path)[1].camera)
    floor_16, _ = multiview.photometric_error(geometry.reference(dataset).held_out_heads, [0, 1, 2], camera_a,
                                              camera_b, 16)
    assert small['results']['mv_consistency_floor'] == pytest.approx(floor_16)
    assert small['results']['mv_consistency_floor'] != pytest.approx(report['results']['mv_consistency_floor'])


def test_eval_metrics_needs_real_images_only_for_inception_metrics(tmp_path, capsys):
    import eval_metrics

    with pytest.raises(SystemExit):
        eval_metrics.parse_args([str(tmp_path / 'generator.pth'), '--metrics', 'fid,pose'])
    assert 'fid need --real_image_dir' in capsys.readouterr().err
    args = eval_metrics.parse_args([str(tmp_path / 'generator.pth'), '--metrics', 'pose,shape'])
    assert args.geometry_metrics == ['pose', 'shape'] and args.image_metrics == []


# --- floors measured the way samples are scored ------------------------------------------------------

def test_pose_floor_is_held_out_heads_read_at_the_samples_cameras(dataset, reference):
    held_out = reference.held_out_heads
    for seed in (0, 1):
        values = geometry.pose_metric(TrueHeads(held_out.heads[:12], held_out.fov), SETTINGS, dataset, 12, seed)
        # The same heads at the same camera draws and size: exactly the floor, whatever the seed.
        assert values['pose_yaw_deg'] == values['pose_yaw_deg_floor']
        assert values['pose_pitch_deg'] == values['pose_pitch_deg_floor']
    # More samples than held-out heads: the heads come round again, at new cameras.
    many = geometry.pose_metric(TrueHeads(held_out.heads * 2, held_out.fov), SETTINGS, dataset, 2 * len(held_out))
    assert many['pose_yaw_deg'] == many['pose_yaw_deg_floor']


def test_shape_floors_and_coverage_references(dataset, reference):
    held_out = reference.held_out_heads
    n = len(held_out) // 2
    floor_heads = TrueHeads(held_out.heads[:n], held_out.fov)
    values = geometry.shape_metric(floor_heads, SETTINGS, dataset, num_samples=n)
    # The floors are these heads scored as samples; the mesh path's floor is them as a sharp density.
    for name in ('shape_distance', 'shape_accuracy', 'shape_coverage'):
        assert values[name] == values[f'{name}_floor']
    sharp = geometry.shape_metric(OccupancyHeads(held_out.heads[:n], held_out.fov), SETTINGS, dataset, num_samples=n)
    assert sharp['shape_distance'] == values['shape_distance_floor_mesh']
    # The grid's terraces cost something, but far less than the gap to chance.
    assert values['shape_distance_floor'] + 1e-4 < values['shape_distance_floor_mesh']
    assert values['shape_distance_floor_mesh'] < (values['shape_distance_floor'] + values['shape_distance_chance']) / 2
    assert 0.3 < values['shape_coverage_floor'] < 0.9 and values['shape_coverage_chance'] == 1 / n
    # The references are the other held-out heads: each is its own nearest, so they cover all of
    # themselves. With more samples than half the held-out heads, coverage takes the first n.
    references = TrueHeads(held_out.heads[n:] + held_out.heads[:2], held_out.fov)
    capped = geometry.shape_metric(references, SETTINGS, dataset, num_samples=n + 2)
    assert capped['shape_coverage'] == 1 and capped['shape_coverage_num'] == n


# --- every way of gaming the metrics is caught ------------------------------------------------------
# Three broken head sources built on true heads the dataset never showed: each must be caught
# by the metrics that can see it, and must not move the ones that cannot.

class IgnoresCamera:
    """Every view is the one from the mean camera; in 3D that is a painted card, so its shape
    is the head squashed to a relief a quarter as deep (the flat failure of pi-GAN)."""

    def __init__(self, heads):
        self.heads = heads

    def render(self, indices, cameras, img_size):
        return self.heads.render(indices, Cameras.cat([front_camera(CAMERA)] * len(indices)), img_size)

    def surface_volume(self, index, resolution, cube_size):
        squash = torch.tensor([1.0, 1.0, 4.0])
        head = self.heads.heads[index]
        return -signed_distance_grid(lambda p: synthetic_heads.head_signed_distance(p * squash, head),
                                     resolution, cube_size), 0.0


class Collapsed:
    """Every sample is the same head (sample 0), seen from the camera asked for."""

    def __init__(self, heads):
        self.heads = heads

    def render(self, indices, cameras, img_size):
        return self.heads.render([0] * len(indices), cameras, img_size)

    def surface_volume(self, index, resolution, cube_size):
        return self.heads.surface_volume(0, resolution, cube_size)


class TwiceApart:
    """Each view is at twice the asked camera's yaw and pitch offset from the mean camera."""

    def __init__(self, heads):
        self.heads = heads

    def render(self, indices, cameras, img_size):
        yaw, pitch = CAMERA.h_mean, CAMERA.v_mean
        wider = Cameras(yaw=2 * cameras.yaw - yaw, pitch=2 * cameras.pitch - pitch, fov=cameras.fov)
        return self.heads.render(indices, wider, img_size)

    def surface_volume(self, index, resolution, cube_size):
        return self.heads.surface_volume(index, resolution, cube_size)


def unchanged(heads):
    return heads


def badness(values, names):
    """Where values lie from their floor (0) to their chance level (1), whichever way is better;
    the mean over names."""
    return float(np.mean([(values[name] - values[f'{name}_floor']) / (values[f'{name}_chance'] - values[f'{name}_floor'])
                          for name in names]))


def broken_source_values(source, dataset):
    values = geometry.geometry_metrics(source, SETTINGS, dataset, ('pose',), num_samples=20)
    values.update(geometry.shape_metric(source, SETTINGS, dataset, num_samples=10))
    values.update(geometry.mv_consistency_metric(source, SETTINGS, dataset, num_samples=6, img_size=32))
    return values


# The least badness of the values each source must be caught by. The shape metrics read the
# density alone, so a render that overturns the camera is pose's and mv_consistency's to catch,
# and a collapse coverage's: one head is the nearest of one reference (exactly chance).
# This test regressor reads images turned beyond the poses it saw as less turned, so
# twice the offsets shows as half the way to chance in pose (the true heads: 0.2).
POSE = ('pose_yaw_deg', 'pose_pitch_deg')
CAUGHT = {
    unchanged: {},
    IgnoresCamera: {POSE: 0.8, ('shape_distance',): 1, ('shape_coverage',): 0.6, ('mv_consistency',): 0.7},
    Collapsed: {('shape_coverage',): 1},
    TwiceApart: {POSE: 0.35, ('mv_consistency',): 0.7},
}
# Values that must stay near their floor (badness under UNMOVED): no false alarms.
UNMOVED = 0.3
NOT_MOVED = {
    unchanged: (POSE, ('shape_distance',), ('shape_coverage',), ('mv_consistency',)),
    IgnoresCamera: (),
    Collapsed: (('shape_distance',), ('mv_consistency',)),
    TwiceApart: (('shape_distance',), ('shape_coverage',)),
}


@pytest.mark.parametrize('source', list(CAUGHT), ids=lambda source: source.__name__)
def test_broken_sources_are_caught(source, dataset, new_heads):
    values = broken_source_values(source(new_heads), dataset)
    for names, least in CAUGHT[source].items():
        assert badness(values, names) >= least, (names, [values[name] for name in names])
    for names in NOT_MOVED[source]:
        assert badness(values, names) < UNMOVED, (names, [values[name] for name in names])
    if source is Collapsed:
        assert values['shape_coverage'] == values['shape_coverage_chance'] == 1 / values['shape_coverage_num']
