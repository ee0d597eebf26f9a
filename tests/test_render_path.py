"""Cameras are inputs: the one render path at given cameras, batches of cameras, pose gradients, meshing."""

import dataclasses
import inspect
import math

import pytest
import torch

from reference import close, formula_state_dict, load_reference, max_rel
from generators import renderer
from generators.camera_utils import CAMERA_KEYS, Cameras
from generators.generators import ImplicitGenerator3d
from inference.inversion import fitting_rendering, render_differentiable
from inference.meshing import density_grid, grid_points
from inference.rendering import Latent, render_view, render_views
from settings import CameraDistribution, Rendering, from_keywords, group_keys, render_settings
from siren import siren

OPTIONS = dict(img_size=8, fov=12, ray_start=0.88, ray_end=1.12, num_steps=6, clamp_mode='relu',
               hierarchical_sample=True, nerf_noise=0.5, white_back=False, last_back=True, lock_view_dependence=False)


def tiny_generator(smooth=False, seed=0):
    """Width 16. smooth: rescaled like tests/test_inverse_render.py's smooth_run, so images change smoothly
    with the pose (fresh weights give per-pixel noise)."""
    torch.manual_seed(seed)
    generator = ImplicitGenerator3d(siren.SPATIALSIRENBASELINE, 8, hidden_dim=16)
    if smooth:
        with torch.no_grad():
            generator.siren.mapping_network.network[-1].weight.mul_(0.02)
            generator.siren.mapping_network.network[-1].bias.zero_()
            generator.siren.final_layer.weight.mul_(300)
            generator.siren.color_layer_linear[0].weight.mul_(10)
    return generator


def latent_of(generator, seed):
    z = torch.randn(1, 8, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return Latent(*generator.siren.mapping_network(z))


@pytest.mark.parametrize('fast_path', [True, False])
def test_render_at_a_camera_equals_the_zero_spread_distribution(fast_path):
    """render() at a camera equals the curriculum path with the pose distribution fixed at the same
    (yaw, pitch), random numbers included (jitter, nerf noise, fine samples)."""
    generator = tiny_generator()
    latent = latent_of(generator, 1)
    for yaw, pitch in ((math.pi / 2, math.pi / 2), (1.2, 1.9), (2.5, 0.8)):
        torch.manual_seed(3)
        expected, expected_depth = generator.staged_forward_with_frequencies(
            *latent, **OPTIONS, h_mean=yaw, v_mean=pitch, h_stddev=0.3, v_stddev=0.2, sample_dist=None,
            fast_path=fast_path)
        torch.manual_seed(3)
        camera = Cameras(yaw=yaw, pitch=pitch, fov=OPTIONS['fov'])
        with torch.no_grad():
            pixels, depth = generator.render(*latent, camera,
                                             from_keywords(Rendering, dict(OPTIONS, fast_path=fast_path)),
                                             max_batch_size=50000)
        assert torch.equal(pixels, expected) and torch.equal(depth, expected_depth)
        torch.manual_seed(3)
        view, view_depth = render_view(generator, latent, camera,
                                       from_keywords(Rendering, dict(OPTIONS, fast_path=fast_path)), 50000, seed=3)
        assert torch.equal(view, pixels[0]) and torch.equal(view_depth, depth[0])


def test_render_at_a_camera_matches_the_original():
    """The reference renders of the original (camera fixed at (h_mean, v_mean)) at explicit cameras,
    one case with lock_view_dependence and one without (tests/test_golden.py renders them all)."""
    spec = load_reference()['generator']
    generator = ImplicitGenerator3d(getattr(siren, spec['model']), spec['z_dim'])
    generator.load_state_dict(formula_state_dict(spec['param_names_shapes_bounds']))
    options = dict(spec['render_options'], perturb=False, nerf_noise=0, white_back=spec['white_back'],
                   last_back=spec['last_back'])
    with torch.no_grad():
        frequencies, phase_shifts = generator.siren.mapping_network(spec['z'])
        cases = {case['lock_view_dependence']: case for case in reversed(spec['renders'])}
        assert len(cases) == 2
        for case in cases.values():
            cameras = Cameras(yaw=[case['h_mean']] * 2, pitch=case['v_mean'], fov=options['fov'])
            rendering = from_keywords(Rendering, dict(options, lock_view_dependence=case['lock_view_dependence']))
            pixels, depth = generator.render(frequencies, phase_shifts, cameras, rendering)
            assert close(pixels, case['pixels']), max_rel(pixels, case['pixels'])
            assert close(depth, case['depth']), max_rel(depth, case['depth'])


def test_a_batch_of_cameras_renders_each_view_as_alone():
    generator = tiny_generator()
    latent = latent_of(generator, 2)
    rendering = fitting_rendering(from_keywords(Rendering, OPTIONS))  # deterministic: no jitter, noise or fine samples
    cameras = Cameras(yaw=[1.2, 1.9, math.pi / 2], pitch=[1.5, 1.7, 0.9], fov=[12, 14, 10])
    pixels, depth = render_views(generator, latent, cameras, rendering, 10000)
    assert pixels.shape == (3, 3, 8, 8) and depth.shape == (3, 8, 8)
    for index, camera in enumerate(cameras):
        alone, alone_depth = render_view(generator, latent, camera, rendering, 10000)
        torch.testing.assert_close(pixels[index], alone, atol=1e-5, rtol=0)
        torch.testing.assert_close(depth[index], alone_depth, atol=1e-5, rtol=0)
    assert not torch.allclose(pixels[0], pixels[1], atol=1e-2)


def pose_loss(generator, latent, yaw, pitch, weights, rendering):
    camera = Cameras(yaw=yaw, pitch=pitch, fov=OPTIONS['fov'])
    return (render_differentiable(generator, latent, camera, rendering) * weights).sum()


def pose_gradient(generator, latent, yaw, pitch, weights, rendering):
    """d pose_loss / d (yaw, pitch), [2]."""
    yaw = torch.tensor(yaw, dtype=weights.dtype, requires_grad=True)
    pitch = torch.tensor(pitch, dtype=weights.dtype, requires_grad=True)
    loss = pose_loss(generator, latent, yaw, pitch, weights, rendering)
    return torch.stack(torch.autograd.grad(loss, (yaw, pitch)))


def test_pose_gradients_are_right_on_both_paths():
    """Gradients w.r.t. yaw and pitch: finite, non-zero, the eager path's equal central differences
    (float64), and the fast path's equal the eager path's."""
    generator = tiny_generator(smooth=True)
    options = dataclasses.replace(fitting_rendering(from_keywords(Rendering, OPTIONS)), img_size=6)
    weights = torch.randn(1, 3, 6, 6, generator=torch.Generator().manual_seed(4))
    yaw, pitch = 1.5, 1.6
    latent = latent_of(generator, 3)
    gradients = {}
    for fast_path in (True, False):
        generator.fast_path = fast_path
        gradients[fast_path] = pose_gradient(generator, latent, yaw, pitch, weights, options)
        assert torch.isfinite(gradients[fast_path]).all() and (gradients[fast_path].abs() > 1e-3).all()
    assert ((gradients[True] - gradients[False]).norm() / gradients[False].norm()) < 1e-3

    generator.double()
    latent, weights = Latent(*(x.double() for x in latent)), weights.double()
    gradient = pose_gradient(generator, latent, yaw, pitch, weights, options)
    step = 1e-5

    def loss_at(yaw, pitch):
        return pose_loss(generator, latent, torch.tensor(yaw, dtype=torch.float64),
                         torch.tensor(pitch, dtype=torch.float64), weights, options)
    with torch.no_grad():
        numeric = torch.stack([(loss_at(yaw + dy, pitch + dp) - loss_at(yaw - dy, pitch - dp)) / (2 * step)
                               for dy, dp in ((step, 0), (0, step))])
    torch.testing.assert_close(gradient, numeric, rtol=1e-4, atol=1e-6)


def test_meshing_goes_through_the_fast_path_and_equals_the_eager_siren(monkeypatch):
    generator = tiny_generator(smooth=True)
    latent = latent_of(generator, 5)
    calls = []
    import generators.generators as module
    fast = module.film_siren_forward
    monkeypatch.setattr(module, 'film_siren_forward', lambda *args: calls.append(1) or fast(*args))
    volume = density_grid(generator, latent, resolution=10, cube_size=0.3, max_batch_size=300)
    assert len(calls) == 4  # 1000 points, 300 per call

    points = grid_points(10, 0.3)[None]
    with torch.no_grad():
        eager = generator.siren.forward_with_frequencies_phase_shifts(
            points, *latent, ray_directions=torch.tensor([0.0, 0.0, -1.0]).expand_as(points))
    expected = torch.relu(eager[0, :, 3]).reshape(10, 10, 10).numpy()
    assert expected.max() > 1  # some density to compare
    assert abs(volume - expected).max() < 1e-4 * (1 + abs(expected).max())


def test_the_renderer_takes_every_rendering_setting_and_unknown_keys_fail():
    generator = tiny_generator()
    render_rays = list(inspect.signature(renderer.render_rays).parameters)
    assert render_rays[6] == 'far'  # the generator's ray_end
    # The generator samples the depths (ray_start, ray_end, num_steps, perturb), casts the rays (img_size) and
    # binds how the SIREN is evaluated (fast_path, and max_batch_size per call) into the `evaluate` it passes;
    # every other rendering setting reaches the renderer as its own argument.
    fields = {field.name for field in dataclasses.fields(Rendering)}
    assert set(render_rays[7:]) == fields - {'img_size', 'ray_start', 'ray_end', 'num_steps', 'perturb', 'fast_path'}
    # Every setting the generator reads is a curriculum key, but nerf_noise (training's schedule).
    assert fields - {'nerf_noise'} == set(group_keys(Rendering)) and set(CAMERA_KEYS) == set(group_keys(
        CameraDistribution))
    with pytest.raises(TypeError, match='hierarchical_sampling'):
        generator.staged_forward(torch.randn(1, 8), **OPTIONS, hierarchical_sampling=True)


def test_forward_with_frequencies_is_forward_from_given_frequencies():
    """The original's inverse_render.py fits a latent through forward_with_frequencies(..., **options):
    it keeps that form, and the typed one, and renders as forward does from the same latent."""
    generator = tiny_generator()
    z = torch.randn(2, 8, generator=torch.Generator().manual_seed(5))
    options = dict(OPTIONS, h_stddev=0.3, v_stddev=0.2, sample_dist='gaussian', h_mean=1.5, v_mean=1.6)
    rendering, camera = render_settings(options)
    with torch.no_grad():
        torch.manual_seed(6)
        expected, expected_poses = generator(z, rendering, camera)
        frequencies = generator.siren.mapping_network(z)
        for call in (lambda: generator.forward_with_frequencies(*frequencies, **options),
                     lambda: generator.forward_with_frequencies(*frequencies, rendering, camera)):
            torch.manual_seed(6)
            pixels, poses = call()
            assert torch.equal(pixels, expected) and torch.equal(poses, expected_poses)


def ball(radius, density=1e4, colour=0.25):
    """An evaluate_siren stand-in: an opaque ball of `colour` around the origin, nothing outside."""
    def evaluate(points, view_directions, frequencies, phase_shifts, **unused):
        inside = (points.norm(dim=-1, keepdim=True) < radius).to(points.dtype)
        return torch.cat([torch.full_like(points, colour), inside * density], -1)
    return evaluate


@pytest.mark.parametrize('white_back', [True, False])
@pytest.mark.parametrize('hierarchical_sample', [False, True])
def test_depth_of_empty_rays_is_the_far_end_under_white_back(white_back, hierarchical_sample):
    """A ray that misses shows the background; under white_back its depth is ray_end, jitter or not (the
    original left it at 0, the camera), and a ray that hits keeps the surface's depth either way."""
    generator = tiny_generator()
    generator.evaluate_siren = ball(0.05)  # an analytic scene in place of the SIREN
    origins = torch.tensor([[[0.0, 0.0, 1.0], [0.3, 0.0, 1.0]]])         # [1, 2 rays, 3]: one hits, one misses
    directions = torch.tensor([[[0.0, 0.0, -1.0], [0.0, 0.0, -1.0]]])
    torch.manual_seed(0)
    rendering = from_keywords(Rendering, dict(img_size=1, ray_start=0.88, ray_end=1.12, num_steps=49, perturb=True,
                                              white_back=white_back, hierarchical_sample=hierarchical_sample))
    rgb, depth = generator.render_rays(None, None, origins, directions, rendering)
    assert depth[0, 0, 0] == pytest.approx(0.95, abs=0.006)              # the ball's front, to one sample step
    torch.testing.assert_close(rgb[0, 0], torch.full((3,), 0.25))
    if white_back:
        assert depth[0, 1, 0] == pytest.approx(1.12, abs=1e-6) and torch.equal(rgb[0, 1], torch.ones(3))
    else:  # without a background the ray composites nothing, as in the original
        assert depth[0, 1, 0] == 0 and torch.equal(rgb[0, 1], torch.zeros(3))
