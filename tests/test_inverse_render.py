"""Inverse rendering: a known latent and pose are recovered; a head fitted from views meshes to its true surface;
the scripts' outputs open in their readers."""

import dataclasses
import math

import numpy as np
import pytest
import scipy.ndimage
import scipy.spatial
import torch
from PIL import Image

import inverse_render
import shape_extraction
from synthetic import heads as synthetic_heads
from test_render_scripts import probe_video
from tiny_checkpoint import make_smooth_run, make_tiny_run
from checkpoints import atomic_save, load_generator
from inference.inversion import fit_latent, fitting_rendering, render_differentiable
from utils.media import save_image, to_uint8
from inference.meshing import density_grid, extract_mesh, grid_points
from generators.camera_utils import Cameras
from inference.rendering import Latent, front_camera, inference_rendering, latent_from_seed, render_view


@pytest.fixture(scope='module')
def smooth_run(tmp_path_factory):
    """A tiny run with a smooth, opaque scene (tiny_checkpoint.make_smooth_run)."""
    return make_smooth_run(tmp_path_factory.mktemp('smooth_run'))


def test_differentiable_render_matches_the_generator(smooth_run):
    generator, settings = load_generator(smooth_run, ema=None)
    rendering = fitting_rendering(inference_rendering(settings, 12, 2))
    latent = latent_from_seed(generator, 1)
    camera = Cameras(yaw=1.4, pitch=1.6, fov=12)
    expected, _ = render_view(generator, latent, camera, rendering, 10000)
    with torch.no_grad():
        pixels = render_differentiable(generator, latent, camera, rendering)
    torch.testing.assert_close(pixels[0], expected, atol=1e-5, rtol=0)


def test_fit_recovers_a_known_latent_and_pose(smooth_run):
    generator, settings = load_generator(smooth_run, ema=None)
    rendering, camera = inference_rendering(settings, 16, 2), settings.camera
    truth = Cameras(yaw=camera.h_mean + 0.05, pitch=camera.v_mean - 0.025, fov=camera.fov)
    target, _ = render_view(generator, latent_from_seed(generator, 3), truth, fitting_rendering(rendering), 10000)

    fit = fit_latent(generator, target[None], rendering, front_camera(camera), num_iterations=200, lr=1e-2,
                     pose_lr=5e-3, noise_scale=0.01, optimize_pose=True, progress=False)
    assert fit.final_loss < fit.initial_loss / 20 and fit.final_loss < 1e-4, (fit.initial_loss, fit.final_loss)
    assert abs(fit.camera.yaw - truth.yaw) < 0.01 and abs(fit.camera.pitch - truth.pitch) < 0.01, fit.camera


def test_inverse_render_script(smooth_run, tmp_path):
    generator, settings = load_generator(smooth_run, ema=None)
    target, _ = render_view(generator, latent_from_seed(generator, 2), front_camera(settings.camera),
                            fitting_rendering(inference_rendering(settings, 24, 2)), 10000)
    save_image(to_uint8(target), tmp_path / 'target.png')
    out = tmp_path / 'out'
    args = [str(smooth_run), str(tmp_path / 'target.png'), '--no_ema', '--image_size', '12', '--render_size', '10',
            '--num_iterations', '15', '--num_frames', '3', '--output_dir', str(out)]
    fit = inverse_render.main(args + ['--optimize_pose'])
    assert fit.final_loss < fit.initial_loss

    for name, size in (('target.png', (12, 12)), ('reconstruction.png', (10, 10)), ('novel_views.png', (50, 10))):
        with Image.open(out / name) as image:
            assert (image.size, image.mode) == (size, 'RGB')
    assert probe_video(out / 'video.mp4') == (3, 10, 10, 'h264', 'yuv420p')

    saved = torch.load(out / 'latent.pt', weights_only=True)
    assert saved['frequencies'].shape == saved['frequency_offsets'].shape == generator.avg_frequencies.shape
    rendering = inference_rendering(settings, 10, 2)
    pixels, _ = render_view(generator, Latent(saved['frequencies'], saved['phase_shifts']),
                            Cameras(yaw=saved['yaw'], pitch=saved['pitch'], fov=saved['fov']), rendering, 10000)
    with Image.open(out / 'reconstruction.png') as image:
        assert np.array_equal(np.asarray(image), to_uint8(pixels))  # the saved latent is the one rendered

    inverse_render.main(args + ['--no-optimize_pose', '--n_iterations', '2', '--output_dir', str(tmp_path / 'fixed')])
    fixed = torch.load(tmp_path / 'fixed' / 'latent.pt', weights_only=True)
    assert (fixed['yaw'], fixed['pitch']) == pytest.approx((settings.camera.h_mean, settings.camera.v_mean))


def test_inverse_render_script_with_views_and_tuned_weights(smooth_run, tmp_path):
    generator, settings = load_generator(smooth_run, ema=None)
    latent, mean = latent_from_seed(generator, 2), settings.camera
    poses = Cameras.cat([front_camera(mean), Cameras(yaw=mean.h_mean + 0.4, pitch=mean.v_mean - 0.1, fov=mean.fov)])
    view_yaw, view_pitch, _ = poses.tolist()[1]
    for index, camera in enumerate(poses):
        pixels, _ = render_view(generator, latent, camera, fitting_rendering(inference_rendering(settings, 24, 2)),
                                10000)
        save_image(to_uint8(pixels), tmp_path / f'view{index}.png')
    out = tmp_path / 'out'
    fit = inverse_render.main([str(smooth_run), str(tmp_path / 'view0.png'), '--no_ema', '--image_size', '12',
                               '--render_size', '10', '--num_iterations', '4', '--num_frames', '2',
                               '--view', str(tmp_path / 'view1.png'), str(view_yaw), str(view_pitch),
                               '--fit_weights', '--weight_lr', '1e-3', '--rays_per_step', '100',
                               '--output_dir', str(out)])
    assert len(fit.cameras) == 2 and fit.generator is not None
    saved = torch.load(out / 'latent.pt', weights_only=True)
    assert saved['cameras'] == poses.tolist()
    assert saved['images'] == [str(tmp_path / 'view0.png'), str(tmp_path / 'view1.png')]
    with Image.open(out / 'views.png') as image:
        assert image.size == (20, 20)  # targets above reconstructions, one column per view

    # The tuned generator loads like a run (its ema.pth holds the same weights) and renders the outputs.
    tuned, tuned_settings = load_generator(out / 'generator.pth')
    assert tuned_settings == settings and tuned.step == generator.step
    name = 'siren.final_layer.weight'
    assert not torch.equal(dict(tuned.named_parameters())[name], dict(generator.named_parameters())[name])
    fitted = Latent(saved['frequencies'], saved['phase_shifts'])
    pixels, _ = render_view(tuned, fitted, poses[0], inference_rendering(settings, 10, 2), 10000)
    with Image.open(out / 'reconstruction.png') as image:
        assert np.array_equal(np.asarray(image), to_uint8(pixels))

    shape_extraction.main([str(out / 'generator.pth'), '--latent', str(out / 'latent.pt'), '--voxel_resolution', '12',
                           '--mesh_format', 'none', '--output_dir', str(tmp_path / 'shape')])
    assert (tmp_path / 'shape' / 'latent.mrc').is_file()

    with pytest.raises(SystemExit):
        inverse_render.main([str(smooth_run), str(tmp_path / 'view0.png'), '--view', 'x.png', 'left', '1.5'])


def test_meshes_lie_on_the_synthetic_heads_known_surface():
    """Marching cubes on a synthetic head's density lands on its true surface, in world coordinates."""
    synthetic = synthetic_heads
    head = synthetic.sample_head_params(1, np.random.default_rng(0))[0]
    resolution, cube_size = 48, 0.3
    points = grid_points(resolution, cube_size)
    # Density like a generator's: high inside, zero outside, crossing 10 at the surface.
    density = torch.relu(10 - 2000 * synthetic.head_signed_distance(points, head))
    vertices, faces = extract_mesh(density.reshape(resolution, resolution, resolution).numpy(), 10, cube_size)
    distance = synthetic.head_signed_distance(torch.from_numpy(vertices), head).abs()
    voxel = cube_size / (resolution - 1)
    assert len(faces) > 100 and distance.max() < voxel, distance.max()

    import trimesh
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    assert mesh.volume > 0  # faces wind outwards


@pytest.fixture(scope='module')
def scratch_run(tmp_path_factory):
    """A tiny run (width 32) rescaled into a smooth, faint fog: a start from which tuned weights can learn a scene.

    Fresh SIREN weights are per-pixel noise (see smooth_run); a gentler first
    layer makes the field smooth at the head's scale, a larger density head lets
    tuning reach opaque densities within a few hundred steps, and a density bias
    of 5 (below the mesh level) leaves space no camera sees empty.
    """
    folder = tmp_path_factory.mktemp('scratch_run')
    path = make_tiny_run(folder, hidden_dim=32)
    checkpoint = torch.load(path, weights_only=True)
    state = checkpoint['state_dict']
    state['siren.mapping_network.network.6.weight'] *= 0.02  # the average latent near the base frequencies
    state['siren.mapping_network.network.6.bias'].zero_()
    state['siren.network.0.layer.weight'] *= 0.25            # smooth at the head's scale
    state['siren.final_layer.weight'] *= 300
    state['siren.final_layer.bias'].fill_(5)
    atomic_save(checkpoint, path)
    return path


def filled_solid(volume, level):
    """The volume with cavities enclosed by the level set filled in: no camera sees inside a solid."""
    inside = scipy.ndimage.binary_fill_holes(volume > level)
    return np.where(inside, np.maximum(volume, 2 * level), volume).astype(np.float32)


# (median, 90th percentile) bounds, world units, for a fitted mesh of synthetic head seed 1 seen as
# ring_of_views() sees it. The head is near-round (radii ~0.06-0.075), so a sphere of the best size
# scores 0.0038/0.0065 on accuracy, 0.0043/0.0068 on completeness; the bare head ellipsoid (no hair,
# nose or eyes) 0/0.0073 and 0.0024/0.0074. Both must fail (see the test below).
ACCURACY_BOUNDS = (0.0025, 0.0055)      # distance of each mesh vertex from the true surface
COMPLETENESS_BOUNDS = (0.003, 0.0055)   # distance of each seen true surface point from the mesh


def surface_errors(vertices, head, seen_points):
    """(accuracy, completeness) as (median, 90th percentile) pairs."""
    accuracy = synthetic_heads.head_signed_distance(torch.from_numpy(vertices), head).abs().numpy()
    completeness, _ = scipy.spatial.cKDTree(vertices).query(seen_points)
    return tuple(tuple(float(x) for x in np.percentile(errors, [50, 90])) for errors in (accuracy, completeness))


def within(errors, bounds):
    return all(error < bound for error, bound in zip(errors, bounds))


def ring_of_views(head, size=32):
    """Eight cameras around the head, alternately above and below it, so every side is seen.

    Returns the cameras, the images [8, 3, S, S] in [0, 1] on a white background, and the
    true surface points the cameras see.
    """
    cameras = Cameras(yaw=[math.pi / 2 + 2 * math.pi * k / 8 for k in range(8)],
                      pitch=[math.pi / 2 + (-0.3 if k % 2 else 0.3) for k in range(8)], fov=12)
    images, buffers = synthetic_heads.render_heads([head] * 8, cameras.pitch, cameras.yaw, size, 12,
                                                   return_buffers=True)
    # The grey background is known: swap it for white exactly (pixels are box filtered; mask = coverage).
    background = torch.tensor(head['background']).reshape(1, 3, 1, 1)
    images = images + (1 - buffers['mask']) * (1 - background)
    return cameras, images, buffers['points'][buffers['part'] > 0].numpy()


def test_multiview_fit_with_tuned_weights_recovers_the_synthetic_heads_surface(scratch_run):
    """Eight views of a known head, fitted from scratch with tuned weights, mesh to its true surface."""
    head = synthetic_heads.sample_head_params(1, np.random.default_rng(1))[0]
    cameras, targets, seen = ring_of_views(head)
    generator, settings = load_generator(scratch_run, ema=None, overrides={'num_steps': 24})
    rendering = inference_rendering(settings, 32, lock_view_dependence=True)
    # the heads' colours do not depend on the view either
    rendering = dataclasses.replace(rendering, white_back=True, last_back=False)
    before = {name: p.clone() for name, p in generator.named_parameters()}

    fit = fit_latent(generator, targets * 2 - 1, rendering, cameras, num_iterations=500, noise_scale=0,
                     fit_weights=True, weight_lr=7e-4, rays_per_step=512, progress=False)
    assert all(torch.equal(p, before[name]) for name, p in generator.named_parameters())  # a copy was tuned
    assert fit.generator is not generator and fit.cameras.tolist() == cameras.tolist()
    assert fit.final_loss < 0.015 and fit.final_loss < fit.initial_loss / 30, (fit.initial_loss, fit.final_loss)

    # The fitted density rises to ~20-30 at the surface and plateaus at ~40-75 inside (a sample
    # 0.0104 apart is a fifth opaque at 20); inside, hidden from every camera, it may dip.
    level, cube_size = 20, 0.24
    volume = density_grid(fit.generator, fit.latent, 64, cube_size, 100000)
    vertices, faces = extract_mesh(filled_solid(volume, level), level, cube_size)
    accuracy, completeness = surface_errors(vertices, head, seen)
    assert len(faces) > 1000
    assert within(accuracy, ACCURACY_BOUNDS) and within(completeness, COMPLETENESS_BOUNDS), (accuracy, completeness)


def test_the_surface_bounds_reject_round_approximations():
    """The bounds above fail for spheres (the best size included) and for the head without hair, nose and eyes."""
    head = synthetic_heads.sample_head_params(1, np.random.default_rng(1))[0]
    _, _, seen = ring_of_views(head)
    axis = np.linspace(-0.12, 0.12, 64)
    points = np.stack(np.meshgrid(axis, axis, axis, indexing='ij')[::-1], -1)  # [z, y, x] -> (x, y, z)
    radii = np.array(head['head_radii'])
    shapes = {f'sphere {r}': np.linalg.norm(points, axis=-1) - r for r in (0.06, 0.065, 0.07, 0.075, 0.08)}
    shapes['bare head'] = np.linalg.norm(points / radii, axis=-1) - 1
    for name, outside in shapes.items():
        vertices, _ = extract_mesh((-outside).astype(np.float32), 0, 0.24)
        accuracy, completeness = surface_errors(vertices, head, seen)
        assert not (within(accuracy, ACCURACY_BOUNDS) and within(completeness, COMPLETENESS_BOUNDS)), name
