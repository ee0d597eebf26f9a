"""Properties of the renderer, cameras and networks that the reference fixtures do not cover."""

import math

import pytest
import torch

from discriminators import discriminators
from generators.camera_utils import look_at_origin, sample_camera_angles
from generators.generators import ImplicitGenerator3d
from generators.ray_sampler import (camera_ray_directions, importance_sample, points_along_rays, rays_from_cameras,
                                    sample_depths, sample_pdf)
from siren import siren

RENDER = dict(img_size=8, fov=12, ray_start=0.88, ray_end=1.12, num_steps=6, h_stddev=0.3, v_stddev=0.155,
              h_mean=math.pi / 2, v_mean=math.pi / 2, sample_dist='gaussian', hierarchical_sample=True,
              clamp_mode='relu', nerf_noise=0.5, lock_view_dependence=False)


def tiny_generator(siren_class=siren.SPATIALSIRENBASELINE, hidden_dim=16, seed=0):
    torch.manual_seed(seed)
    return ImplicitGenerator3d(siren_class, 32, hidden_dim=hidden_dim)


# --- hierarchical sampling ------------------------------------------------------------

def test_sample_pdf_follows_known_distribution():
    torch.manual_seed(0)
    bins = torch.linspace(0, 1, 6).expand(2000, 6)  # 5 bins of width 0.2
    weights = torch.tensor([0.05, 0.1, 0.6, 0.2, 0.05]).expand(2000, 5)
    samples = sample_pdf(bins, weights, 64).flatten()
    assert samples.min() >= 0 and samples.max() <= 1
    counts = torch.histc(samples, bins=5, min=0, max=1) / samples.numel()
    assert torch.allclose(counts, weights[0] / weights[0].sum(), atol=0.01)
    # Within a bin the density is uniform: the middle bin's samples average to its centre.
    middle = samples[(samples > 0.4) & (samples < 0.6)]
    assert abs(middle.mean().item() - 0.5) < 0.005


def test_importance_sampling_concentrates_where_weights_are_high():
    torch.manual_seed(0)
    z_vals = torch.linspace(0.88, 1.12, 12).reshape(1, 1, 12, 1).expand(3, 50, 12, 1)
    weights = torch.zeros(3, 50, 12, 1)
    weights[:, :, 7] = 1.0  # all mass at the 8th coarse sample
    fine = importance_sample(z_vals, weights, 12)
    assert fine.shape == (3, 50, 12, 1)
    mids = 0.5 * (z_vals[0, 0, :-1, 0] + z_vals[0, 0, 1:, 0])
    inside = ((fine >= mids[6]) & (fine <= mids[7])).float().mean()
    assert inside > 0.99


# --- cameras -----------------------------------------------------------------------------

@pytest.mark.parametrize('mode,check', [
    ('gaussian', lambda x, mean, spread: abs(x.mean() - mean) < 0.01 and abs(x.std() - spread) < 0.01),
    ('normal', lambda x, mean, spread: abs(x.mean() - mean) < 0.01 and abs(x.std() - spread) < 0.01),
    ('uniform', lambda x, mean, spread: abs(x.mean() - mean) < 0.01 and x.min() >= mean - spread
     and x.max() <= mean + spread and abs(x.std() - spread / math.sqrt(3)) < 0.01),
    ('truncated_gaussian', lambda x, mean, spread: abs(x.mean() - mean) < 0.01 and x.min() >= mean - 2 * spread
     and x.max() <= mean + 2 * spread and abs(x.std() - 0.88 * spread) < 0.01),
    ('fixed', lambda x, mean, spread: bool(torch.all(x == torch.tensor(mean, dtype=x.dtype)))),
    (None, lambda x, mean, spread: bool(torch.all(x == torch.tensor(mean, dtype=x.dtype)))),
])
def test_camera_distributions(mode, check):
    torch.manual_seed(0)
    pitch, yaw = sample_camera_angles(40000, 0.3, 0.15, math.pi / 2, math.pi / 2 - 0.1, mode)
    assert pitch.shape == yaw.shape == (40000, 1)
    assert check(yaw, math.pi / 2, 0.3)
    assert check(pitch, math.pi / 2 - 0.1, 0.15)


def test_hybrid_mixes_uniform_and_gaussian():
    torch.manual_seed(0)
    import random
    random.seed(0)
    batches = [sample_camera_angles(2000, 0.3, 0.15, 0.0, math.pi / 2, 'hybrid')[1] for _ in range(20)]
    uniform = [b for b in batches if b.abs().max() <= 0.6 and abs(b.std() - 0.6 / math.sqrt(3)) < 0.02]
    gaussian = [b for b in batches if abs(b.std() - 0.3) < 0.02]
    assert uniform and gaussian and len(uniform) + len(gaussian) == 20


def test_spherical_uniform_is_uniform_on_the_sphere_band():
    torch.manual_seed(0)
    v_stddev = v_mean = math.pi / 4 * 85 / 90  # CARLA
    pitch, yaw = sample_camera_angles(40000, math.pi, v_stddev, math.pi / 2, v_mean, 'spherical_uniform')
    cos_pitch = torch.cos(pitch)
    # cos(pitch) = 1 - 2v with v uniform in [v_mean - v_std, v_mean + v_std] / pi (clamped).
    low, high = 1 - 2 * min((v_mean + v_stddev) / math.pi, 1 - 1e-5), 1 - 2 * max((v_mean - v_stddev) / math.pi, 1e-5)
    assert cos_pitch.min() >= low - 1e-4 and cos_pitch.max() <= high + 1e-4
    hist = torch.histc(cos_pitch, bins=4, min=low, max=high) / 40000
    assert torch.allclose(hist, torch.full((4,), 0.25), atol=0.01)
    assert yaw.min() >= -math.pi / 2 and yaw.max() <= 3 * math.pi / 2


def test_pitch_is_clamped_away_from_the_poles():
    pitch, _ = sample_camera_angles(10, 0, 0, 0, -1.0, 'fixed')
    assert torch.all(pitch == torch.tensor(1e-5))


def test_camera_looks_at_origin_from_unit_sphere():
    pitch = torch.tensor([[math.pi / 2], [0.7], [2.0]])
    yaw = torch.tensor([[math.pi / 2], [0.3], [-1.0]])
    cam2world = look_at_origin(pitch, yaw)
    origin, forward = cam2world[:, :3, 3], -cam2world[:, :3, 2]
    assert torch.allclose(origin.norm(dim=-1), torch.ones(3))
    assert torch.allclose(forward, -origin, atol=1e-6)  # looks at the origin
    assert torch.allclose(origin[0], torch.tensor([0.0, 0.0, 1.0]), atol=1e-6)  # yaw=pitch=pi/2 -> +z
    assert torch.all(cam2world[:, 1, 1] > 0)  # camera up has a positive world-y component
    rotation = cam2world[:, :3, :3]
    assert torch.allclose(rotation @ rotation.transpose(1, 2), torch.eye(3).expand(3, 3, 3), atol=1e-6)


def test_samples_lie_on_rays_between_near_and_far():
    torch.manual_seed(0)
    pitch, yaw = sample_camera_angles(2, 0.3, 0.15, math.pi / 2, math.pi / 2, 'gaussian')
    origins, directions = rays_from_cameras(look_at_origin(pitch, yaw), 12, 5)
    z_vals = sample_depths(2, 25, 8, 0.88, 1.12, perturb=True)
    offsets = points_along_rays(origins, directions, z_vals) - origins.unsqueeze(2)
    assert torch.allclose(offsets.norm(dim=-1, keepdim=True), z_vals, atol=1e-5)
    assert torch.allclose(directions.norm(dim=-1), torch.ones(2, 25))
    # The centre pixel looks at the origin; the middle row's end pixels are fov apart.
    assert torch.allclose(directions[:, 12], -origins[:, 12], atol=1e-6)
    angle = torch.arccos((directions[:, 10] * directions[:, 14]).sum(-1))
    assert torch.allclose(angle, torch.full((2,), math.radians(12)), atol=1e-5)
    step = 0.24 / 7
    assert z_vals.min() >= 0.88 - step / 2 and z_vals.max() <= 1.12 + step / 2
    fixed = sample_depths(1, 16, 8, 0.88, 1.12, perturb=False)
    assert torch.allclose(fixed[0, 0, :, 0], torch.linspace(0.88, 1.12, 8))


def test_camera_ray_directions_for_one_or_several_fields_of_view():
    one = camera_ray_directions(12, (5, 4))
    assert one.shape == (20, 3)  # a number: one grid, as the original
    several = camera_ray_directions(torch.tensor([12.0, 30.0]), (5, 4))
    assert several.shape == (2, 20, 3)
    assert torch.equal(several[0], one) and torch.equal(several[1], camera_ray_directions(30, (5, 4)))


# --- generator -------------------------------------------------------------------------------

def test_psi_zero_renders_the_average_latent_for_every_z():
    generator = tiny_generator().eval()
    options = dict(RENDER, sample_dist=None, hierarchical_sample=False, nerf_noise=0, perturb=False)
    first, _ = generator.staged_forward(torch.randn(3, 32), psi=0, **options)
    second, _ = generator.staged_forward(torch.randn(3, 32) * 3, psi=0, **options)
    avg_f, avg_p = generator.generate_avg_frequencies()
    average, _ = generator.staged_forward_with_frequencies(avg_f.expand(3, -1), avg_p.expand(3, -1), **options)
    assert torch.allclose(first, second, atol=1e-6) and torch.allclose(first, average, atol=1e-6)
    varied, _ = generator.staged_forward(torch.randn(3, 32), psi=1, **options)
    assert not torch.allclose(varied[0], varied[1], atol=1e-3)


def test_average_frequencies_are_reproducible_and_follow_weight_changes():
    generator = tiny_generator()
    first = generator.generate_avg_frequencies()[0].clone()
    assert torch.equal(first, tiny_generator().generate_avg_frequencies()[0])
    with torch.no_grad():
        generator.siren.mapping_network.network[-1].bias.add_(1.0)
    assert torch.allclose(generator.generate_avg_frequencies()[0], first + 1.0, atol=1e-5)


@pytest.mark.parametrize('hierarchical', [False, True])
def test_staged_forward_chunks_equal_one_batch(hierarchical):
    generator = tiny_generator().eval()
    z = torch.randn(2, 32)
    options = dict(RENDER, hierarchical_sample=hierarchical)
    torch.manual_seed(1)
    whole, whole_depth = generator.staged_forward(z, max_batch_size=10 ** 7, **options)
    torch.manual_seed(1)
    chunked, chunked_depth = generator.staged_forward(z, max_batch_size=37, **options)
    assert whole.shape == (2, 3, 8, 8) and whole_depth.shape == (2, 8, 8)
    assert torch.allclose(whole, chunked, atol=1e-5) and torch.allclose(whole_depth, chunked_depth, atol=1e-5)
    assert whole.min() >= -1 and whole.max() <= 1
    assert whole_depth.min() >= 0 and whole_depth.max() <= 1.15  # transparent rays have depth below near


@pytest.mark.parametrize('siren_class', [siren.TALLSIREN, siren.SPATIALSIRENBASELINE,
                                         siren.EmbeddingPiGAN128, siren.EmbeddingPiGAN256])
def test_every_parameter_gets_a_gradient(siren_class):
    generator = tiny_generator(siren_class)
    pixels, pitch_yaw = generator(torch.randn(2, 32), **RENDER)
    assert pixels.shape == (2, 3, 8, 8) and pitch_yaw.shape == (2, 2)
    (pixels.square().mean() + pitch_yaw.sum() * 0).backward()
    missing = [name for name, p in generator.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_lock_view_dependence_removes_view_direction():
    generator = tiny_generator()
    points = torch.rand(1, 5, 3) * 0.2 - 0.1
    z = torch.randn(1, 32)
    with torch.no_grad():
        frequencies, phases = generator.siren.mapping_network(z)
        a = generator.evaluate_siren(points.unsqueeze(1), torch.tensor([[[0.0, 0, -1]]]), frequencies, phases)
        b = generator.evaluate_siren(points.unsqueeze(1), torch.tensor([[[0.6, 0, -0.8]]]), frequencies, phases)
    assert not torch.allclose(a[..., :3], b[..., :3])
    assert torch.equal(a[..., 3], b[..., 3])  # density never depends on the view
    options = dict(RENDER, sample_dist=None, hierarchical_sample=False, nerf_noise=0, perturb=False,
                   lock_view_dependence=True)
    # With locked view dependence, a point's colour is the same from any camera: compare the
    # SIREN's colour as seen by the renderer from two yaws at identical world points.
    seen = []
    original = generator.evaluate_siren

    def spy(points_, view_directions, *args, **kwargs):
        seen.append(view_directions.clone())
        return original(points_, view_directions, *args, **kwargs)

    generator.evaluate_siren = spy
    generator.staged_forward(z, **options)
    generator.staged_forward(z, **dict(options, h_mean=1.2))
    assert all(torch.equal(v, torch.tensor([0.0, 0.0, -1.0]).expand_as(v)) for v in seen)


# --- discriminators --------------------------------------------------------------------------

@pytest.mark.parametrize('name,sizes', [
    ('ProgressiveDiscriminator', [2, 4, 8, 16, 32, 64]),
    ('ProgressiveEncoderDiscriminator', [2, 4, 8, 16, 32, 64]),
    ('StridedDiscriminator', [2, 4, 8, 16, 32, 64]),
    ('CCSDiscriminator', [2, 4, 8, 16, 32, 64]),
    ('CCSEncoderDiscriminator', [2, 4, 8, 16, 32, 64]),
])
def test_discriminators_accept_every_size_and_return_three_outputs(name, sizes):
    torch.manual_seed(0)
    disc = getattr(discriminators, name)()
    encoder = 'Encoder' in name
    for size in sizes:
        prediction, latent, position = disc(torch.randn(2, 3, size, size), 0.5)
        assert prediction.shape == (2, 1)
        assert (latent.shape == (2, 256) and position.shape == (2, 2)) if encoder else (latent is None and position is None)
    largest = 512 if name.startswith('Progressive') else 256
    assert max(disc.img_size_to_layer) == largest and min(disc.img_size_to_layer) == 2
    with pytest.raises(ValueError, match='square images'):
        disc(torch.randn(1, 3, 24, 24), 1.0)


def test_alpha_fades_between_resolutions():
    torch.manual_seed(0)
    disc = discriminators.CCSEncoderDiscriminator()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        full = disc(images, 1.0)[0]
        faded = disc(images, 0.0)[0]
        half = disc(images, 0.5)[0]
    assert not torch.allclose(full, faded)
    # alpha=0 uses only the half-resolution adapter path for the first block's output.
    x = disc.fromRGB[disc.img_size_to_layer[16]](torch.nn.functional.interpolate(images, scale_factor=0.5))
    with torch.no_grad():
        for layer in disc.layers[disc.img_size_to_layer[16]:]:
            x = layer(x)
        expected = disc.final_layer(x).reshape(2, -1)[:, :1]
    assert torch.allclose(faded, expected, atol=1e-5)
    assert not torch.allclose(half, full) and not torch.allclose(half, faded)
