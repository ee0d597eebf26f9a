"""Inverse rendering: a known latent and pose are recovered; the script's outputs open in their readers."""

import os

import numpy as np
import pytest
import torch
from PIL import Image

import inverse_render
from test_render_scripts import probe_video
from tiny_checkpoint import make_tiny_run
from torch_utils.checkpoint import atomic_save, load_generator
from torch_utils.inversion import fit_latent, fitting_options, render_differentiable
from torch_utils.media import save_image, to_uint8
from torch_utils.meshing import extract_mesh
from torch_utils.rendering import Camera, Latent, front_camera, inference_options, latent_from_seed, render_view


@pytest.fixture(scope='module')
def smooth_run(tmp_path_factory):
    """A tiny run whose fresh weights are rescaled into a smooth, opaque scene.

    A fresh mapping network asks the SIREN for frequencies far above pi-GAN's
    base of 30, so renders are per-pixel noise that no fit can follow; near the
    base, images change smoothly with the latent and the pose, as a trained
    model's do.
    """
    folder = tmp_path_factory.mktemp('smooth_run')
    path = make_tiny_run(folder)
    checkpoint = torch.load(path, weights_only=True)
    state = checkpoint['state_dict']
    state['siren.mapping_network.network.6.weight'] *= 0.02  # latents close to the average frequencies
    state['siren.mapping_network.network.6.bias'].zero_()
    state['siren.final_layer.weight'] *= 300                 # real densities, so surfaces form
    state['siren.color_layer_linear.0.weight'] *= 10         # visible colour contrast
    atomic_save(checkpoint, path)
    for name in ('ema.pth', 'ema2.pth'):
        (folder / name).unlink()
    return path


def test_differentiable_render_matches_the_generator(smooth_run):
    generator, metadata = load_generator(smooth_run, ema=None)
    options = fitting_options(inference_options(metadata, 12, 2))
    latent = latent_from_seed(generator, 1)
    camera = Camera(1.4, 1.6, 12)
    expected, _ = render_view(generator, latent, camera, options, 10000)
    with torch.no_grad():
        pixels = render_differentiable(generator, latent, torch.tensor(camera.pitch), torch.tensor(camera.yaw),
                                       options)
    torch.testing.assert_close(pixels[0], expected, atol=1e-5, rtol=0)


def test_fit_recovers_a_known_latent_and_pose(smooth_run):
    generator, metadata = load_generator(smooth_run, ema=None)
    options = inference_options(metadata, 16, 2)
    truth = Camera(metadata['h_mean'] + 0.05, metadata['v_mean'] - 0.025, metadata['fov'])
    target, _ = render_view(generator, latent_from_seed(generator, 3), truth, fitting_options(options), 10000)

    fit = fit_latent(generator, target[None], options, front_camera(options), num_iterations=200, lr=1e-2,
                     pose_lr=5e-3, noise_scale=0.01, optimize_pose=True, progress=False)
    assert fit.final_loss < fit.initial_loss / 20 and fit.final_loss < 1e-4, (fit.initial_loss, fit.final_loss)
    assert abs(fit.camera.yaw - truth.yaw) < 0.01 and abs(fit.camera.pitch - truth.pitch) < 0.01, fit.camera


def test_inverse_render_script(smooth_run, tmp_path):
    generator, metadata = load_generator(smooth_run, ema=None)
    target, _ = render_view(generator, latent_from_seed(generator, 2), front_camera(metadata),
                            fitting_options(inference_options(metadata, 24, 2)), 10000)
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
    options = inference_options(metadata, 10, 2)
    pixels, _ = render_view(generator, Latent(saved['frequencies'], saved['phase_shifts']),
                            Camera(saved['yaw'], saved['pitch'], saved['fov']), options, 10000)
    with Image.open(out / 'reconstruction.png') as image:
        assert np.array_equal(np.asarray(image), to_uint8(pixels))  # the saved latent is the one rendered

    inverse_render.main(args + ['--no-optimize_pose', '--n_iterations', '2', '--output_dir', str(tmp_path / 'fixed')])
    fixed = torch.load(tmp_path / 'fixed' / 'latent.pt', weights_only=True)
    assert (fixed['yaw'], fixed['pitch']) == pytest.approx((metadata['h_mean'], metadata['v_mean']))


def test_meshes_lie_on_the_synthetic_heads_known_surface():
    """Marching cubes on a synthetic head's density lands on its true surface, in world coordinates."""
    synthetic = pytest.importorskip('synthetic_dataset')
    if not all(hasattr(synthetic, name) for name in ('head_signed_distance', 'sample_head_params')):
        pytest.skip('synthetic_dataset has no head_signed_distance / sample_head_params')
    head = synthetic.sample_head_params(1, np.random.default_rng(0))[0]
    resolution, cube_size = 48, 0.3
    axis = torch.linspace(-cube_size / 2, cube_size / 2, resolution)
    z, y, x = torch.meshgrid(axis, axis, axis, indexing='ij')
    points = torch.stack([x, y, z], -1).reshape(-1, 3)
    # Density like a generator's: high inside, zero outside, crossing 10 at the surface.
    density = torch.relu(10 - 2000 * synthetic.head_signed_distance(points, head))
    vertices, faces = extract_mesh(density.reshape(resolution, resolution, resolution).numpy(), 10, cube_size)
    distance = synthetic.head_signed_distance(torch.from_numpy(vertices), head).abs()
    voxel = cube_size / (resolution - 1)
    assert len(faces) > 100 and distance.max() < voxel, distance.max()

    import trimesh
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    assert mesh.volume > 0  # faces wind outwards


@pytest.mark.skipif('PIGAN_SYNTHETIC_CHECKPOINT' not in os.environ,
                    reason='needs a generator trained on the synthetic heads (set PIGAN_SYNTHETIC_CHECKPOINT)')
def test_inverse_rendered_mesh_lies_near_the_synthetic_heads_surface(tmp_path):
    synthetic = pytest.importorskip('synthetic_dataset')
    from torch_utils.meshing import density_grid
    generator, metadata = load_generator(os.environ['PIGAN_SYNTHETIC_CHECKPOINT'])
    head = synthetic.sample_head_params(1, np.random.default_rng(1))[0]
    image = synthetic.render_heads(head, [metadata['v_mean']], [metadata['h_mean']], 64, metadata['fov'])
    options = inference_options(metadata, 64, 2)
    fit = fit_latent(generator, image * 2 - 1, options, front_camera(options), num_iterations=300, progress=False)
    volume = density_grid(generator, fit.latent, 96, 0.3, 200000)
    vertices, _ = extract_mesh(volume, 10, 0.3)
    # Only the front half was seen; compare the vertices facing the camera.
    front = vertices[vertices[:, 2] > 0]
    distance = synthetic.head_signed_distance(torch.from_numpy(front), head).abs()
    assert float(distance.median()) < 0.01, float(distance.median())  # a tenth of the head's radius
