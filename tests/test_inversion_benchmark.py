"""The inversion benchmark: the fit recovers a tiny generator's own sample; every value's floor and
baseline come out as defined on controlled inputs; the held-out heads are not a dataset's."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from synthetic import heads as synthetic_heads
from checkpoints import load_generator
from inference import inversion as inversion_fit
from inference.inversion import best_start, fit_arguments, fitting_rendering, invert, pose_grid
from generators.camera_utils import Cameras
from inference.rendering import Latent, inference_rendering, latent_from_seed, render_view
from metrics import inversion
from metrics.geometry import FixedView
from inference.rendering import front_camera
from metrics.heads import GeneratorHeads, TrueHeads
from settings import Settings
from tiny_checkpoint import make_smooth_run, tiny_curriculum

# A fit that changes nothing: the average latent at the mean pose, as the fit starts.
NO_FIT = ['--num_iterations', '1', '--lr', '0', '--pose_lr', '0', '--noise_scale', '0', '--no-pose_search',
          '--optimize_pose']


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """(generator, settings) of a smooth tiny run."""
    return load_generator(make_smooth_run(tmp_path_factory.mktemp('tiny_inversion')), ema=None)


@pytest.fixture(scope='module')
def tiny_white(tmp_path_factory):
    """The same on white: empty rays end at the far end, so renders have silhouettes. (Its fog is no
    scene a fit recovers: the fit is tested on the other.)"""
    return load_generator(make_smooth_run(tmp_path_factory.mktemp('tiny_white'), white_back=True), ema=None)


def test_fit_recovers_the_generators_own_sample(tiny):
    generator, settings = tiny
    truth = Cameras(yaw=settings.camera.h_mean + 0.06, pitch=settings.camera.v_mean - 0.03, fov=settings.camera.fov)
    latent = latent_from_seed(generator, 3)
    target, _ = render_view(generator, latent, truth, fitting_rendering(inference_rendering(settings, 16, 2)), 10000)
    args = fit_arguments(['--optimize_pose', '--no-pose_search', '--image_size', '16', '--num_iterations', '150',
                          '--noise_scale', '0.01'])  # the search is tested below; this scene is no head
    fit = invert(generator, settings, target[None], front_camera(settings.camera), args, progress=False)
    assert abs(fit.camera.yaw - truth.yaw) < 0.01 and abs(fit.camera.pitch - truth.pitch) < 0.01, fit.camera
    assert fit.offsets.frequencies.abs().max() > 0 and fit.offsets.phase_shifts.abs().max() > 0  # both fitted
    # W+ holds many latents of one scene: recovered means the same scene, seen from where the fit never looked.
    rendering = inference_rendering(settings, 16, 2)
    novel = truth.turned(yaw=0.3)
    expected, _ = render_view(generator, latent, novel, rendering, 10000)
    seen, _ = render_view(generator, fit.latent, fit.camera.turned(yaw=0.3), rendering, 10000)
    error = float(((seen - expected) ** 2).mean())
    start = float(((render_view(generator, Latent(*generator.generate_avg_frequencies()), novel, rendering, 10000)[0]
                    - expected) ** 2).mean())
    assert error < start / 3, (error, start)  # this tiny scene's latents differ little: start is small


def test_pose_search_starts_the_fit_near_a_pose_far_from_the_mean(tiny):
    generator, settings = tiny
    grid = pose_grid(settings.camera)
    truth = grid[7]  # a grid pose far from the mean (yaw +1.5 std devs, pitch -2)
    target, _ = render_view(generator, Latent(*generator.generate_avg_frequencies()), truth,
                            fitting_rendering(inference_rendering(settings, 16, 2)), 10000)
    args = fit_arguments(NO_FIT + ['--pose_search', '--image_size', '16'])
    fit = invert(generator, settings, target[None], front_camera(settings.camera), args, progress=False)
    assert fit.camera.tolist()[0][:2] == pytest.approx(truth.tolist()[0][:2], abs=1e-6)


def test_short_fits_choose_the_start_whose_fit_ends_best(tiny):
    """Of several starts (the true pose listed last), the full fit begins where the short fit with the lowest
    loss ended: near the true pose, not at the first start or the worst."""
    generator, settings = tiny
    grid = pose_grid(settings.camera)
    truth = grid[7]
    target, _ = render_view(generator, Latent(*generator.generate_avg_frequencies()), truth,
                            fitting_rendering(inference_rendering(settings, 16, 2)), 10000)
    args = fit_arguments(['--optimize_pose', '--image_size', '16', '--start_iterations', '5', '--noise_scale', '0'])
    rendering = inference_rendering(settings, 16, 2)
    start = best_start(generator, target[None], rendering, grid[[37, 0, 7]], args)
    assert abs(start.yaw - truth.yaw) < 0.02 and abs(start.pitch - truth.pitch) < 0.02, (start, truth)


def test_a_z_space_fit_starts_from_the_nearest_random_draw(tiny):
    """Not from z = 0, which no random draw is near (|z|^2 / z_dim is about 1): a target drawn from the start
    stream's fifth z is where the fit begins (with no steps taken, it ends there)."""
    generator, settings = tiny
    rendering = fitting_rendering(inference_rendering(settings, 16, 2))
    draws = torch.randn(inversion_fit.Z_STARTS, generator.z_dim, generator=torch.Generator().manual_seed(0))
    truth = Latent(*generator.siren.mapping_network(draws[4:5]))
    camera = front_camera(settings.camera)
    target, _ = render_view(generator, truth, camera, rendering, 10000)
    args = fit_arguments(NO_FIT + ['--latent_space', 'z', '--image_size', '16'])
    fit = invert(generator, settings, target[None], camera, args, progress=False)
    assert torch.allclose(fit.latent.frequencies, truth.frequencies) and fit.initial_loss < 1e-8


def test_scores_of_known_images():
    truth = torch.zeros(2, 3, 16, 16)
    assert inversion.psnr(truth + 0.2, truth).tolist() == pytest.approx([20, 20], abs=1e-4)  # 0.1 in 0..1 colours
    assert inversion.ssim(truth, truth).tolist() == pytest.approx([1, 1])
    assert inversion.ssim(truth + torch.randn_like(truth), truth).max() < 0.5
    masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    masks[:, :2] = True
    other = masks.clone()
    other[1] = ~other[1]
    assert inversion.iou(masks, other).tolist() == [1.0, 0.0]
    depth = torch.tensor([[0.93, 1.02, 1.08, 1.12, math.inf]])  # 1.08: a faint fog in front of the white
    rendering = Settings.at_step(tiny_curriculum(ray_end=1.12, white_back=True), 0).rendering
    silhouette = inversion.silhouettes(depth, rendering)
    assert silhouette.tolist() == [[True, True, False, False, False]]
    black = dataclasses.replace(rendering, white_back=False)
    assert math.isnan(inversion.view_scores(truth, depth, truth, depth, black)['iou'][0])


def test_a_perfect_inversion_scores_at_the_floor(tiny_white):
    """The generator's own average head at the mean pose, 'inverted' by a fit that stays where it starts."""
    generator, settings = tiny_white
    average = Latent(*generator.generate_avg_frequencies())
    heads = GeneratorHeads(generator, settings, latents=[average] * 2)
    cameras = Cameras.cat([front_camera(settings.camera)] * 2)
    args = fit_arguments(NO_FIT + ['--image_size', '16'])
    values, details = inversion.benchmark(generator, settings, heads, cameras, args, progress=False)
    assert values['inversion_yaw_deg'] == values['inversion_yaw_deg_floor'] == 0
    assert values['inversion_pitch_deg'] == values['inversion_pitch_deg_floor'] == 0
    for offset in ('03', '05'):
        assert values[f'inversion_psnr_{offset}'] > 40  # the same renderer, to rounding
        assert values[f'inversion_ssim_{offset}'] == pytest.approx(1, abs=1e-3)
        assert values[f'inversion_iou_{offset}'] == 1
        assert values[f'inversion_psnr_{offset}'] > values[f'inversion_psnr_{offset}_copy'] + 5  # the head turns
    assert 'inversion_shape' not in values  # no true surface to compare with (its cost is bench/inversion.py's)
    assert set(details['views']) == {-0.5, -0.3, 0.3, 0.5}


def test_the_copied_input_scores_as_the_baseline(tiny_white):
    """A head whose image never turns: its every view is the input, so copying the input is perfect."""
    generator, settings = tiny_white
    heads = TrueHeads(synthetic_heads.sample_head_params(2, np.random.default_rng(5), 'white'), settings.camera.fov)
    cameras = Cameras.cat([front_camera(settings.camera), front_camera(settings.camera).turned(yaw=0.2)])
    args = fit_arguments(['--num_iterations', '3', '--no-pose_search', '--optimize_pose', '--pose_lr', '0',
                          '--image_size', '16'])  # the latent moves, the pose stays at the mean
    values, details = inversion.benchmark(generator, settings, FixedView(heads, cameras[0]), cameras, args,
                                          progress=False)
    average = Latent(*generator.generate_avg_frequencies())
    for offset in (0.3, 0.5):
        tag = f'{offset:.1f}'.replace('.', '')
        assert values[f'inversion_psnr_{tag}_copy'] > 45  # identical but for the PNG's rounding
        assert values[f'inversion_iou_{tag}_copy'] == 1
        # The mean-latent baseline: the average head at the recovered pose, turned.
        means = torch.stack([render_view(generator, average, fit.camera.turned(yaw=sign * offset),
                                         inference_rendering(settings), 10000, seed=index)[0]
                             for sign in (-1, 1) for index, fit in enumerate(details['fits'])])
        truths = torch.cat([details['views'][sign * offset]['truth'] for sign in (-1, 1)])
        assert values[f'inversion_psnr_{tag}_mean'] == pytest.approx(float(inversion.psnr(means, truths).mean()))
        assert values[f'inversion_psnr_{tag}_mean'] != pytest.approx(values[f'inversion_psnr_{tag}'])
    assert values['inversion_yaw_deg_start'] == pytest.approx(math.degrees(0.2) / 2, abs=1e-4)
    assert values['inversion_yaw_deg'] == pytest.approx(math.degrees(0.2) / 2, abs=1e-4)  # the pose did not move


def test_shape_is_measured_against_that_head():
    heads = TrueHeads(synthetic_heads.sample_head_params(2, np.random.default_rng(7), 'white'), 12)
    own = inversion.shape_distances(heads, heads)
    swapped = inversion.shape_distances(TrueHeads(heads.heads[::-1], 12), heads)
    spheres = inversion.best_spheres(heads)
    assert (own < 0.001).all() and (swapped > 2 * own).all() and (spheres > 2 * own).all(), (own, swapped, spheres)


def test_held_out_heads_are_no_datasets():
    settings = Settings.at_step(tiny_curriculum(synthetic_background='white'), 0)
    heads = inversion.held_out_heads(4, settings).heads
    dataset = synthetic_heads.sample_head_params(2000, np.random.default_rng(0), 'white')
    radii = {tuple(head['head_radii']) for head in dataset}
    assert not radii & {tuple(head['head_radii']) for head in heads}
    assert heads[0]['background'] == [1.0] * 3
    with pytest.raises(ValueError, match="held-out heads' own"):
        inversion.held_out_heads(4, settings, dataset_seed=inversion.HEAD_SEED)
