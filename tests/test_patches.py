"""Patch training (training/patches.py): a patch is the same region of the view in a generated and a real
image (the rays pass through the points the real image is resampled at); the discriminator is told the
scale; the D and G steps judge patches, with R1 on the real ones; without the keys the step is unchanged;
train.py trains with patches, on one process and two."""

import dataclasses
import os
import subprocess
import sys

import pytest
import torch

import curriculums
import train
from checkpoints.builders import DISCRIMINATOR_CLASSES, build_discriminator
from generators.camera_utils import Cameras
from generators.ray_sampler import rays_from_cameras
from settings import Rendering, from_keywords
from training import patches, steps
from training.loss import discriminator_gan_loss, generator_gan_loss, r1_penalty
from training.patches import Patches, patch_grid

from test_render_path import latent_of, tiny_generator
from test_training import ROOT, TINY, free_port, load_state, stats, synthetic_dir  # noqa: F401  (a fixture)
from test_training_objective import generated_as_in_step, make_trainer, no_poses, real_images, tiny_settings

RENDER = dict(ray_start=0.88, ray_end=1.12, num_steps=6, perturb=False, hierarchical_sample=False, white_back=True)


def render(generator, latent, size, grid=None):
    """The generator's render of one camera at size x size, or of the patch at grid [1, K, K, 2]."""
    with torch.no_grad():
        return generator.render(*latent, Cameras(yaw=1.3, pitch=1.7, fov=12),
                                from_keywords(Rendering, dict(RENDER, img_size=size)), patch_grid=grid)[0]


def test_a_whole_image_patch_is_the_image():
    """Scale 1 around the centre with K = img_size: the real patch is the image, the generated one its render."""
    size = 12
    whole = Patches(patch_grid(torch.ones(1), torch.zeros(1, 2), size), torch.ones(1))
    image = torch.rand(1, 3, size, size)
    torch.testing.assert_close(patches.crop(image, whole), image, atol=1e-6, rtol=0)
    generator = tiny_generator()
    latent = latent_of(generator, 0)
    torch.testing.assert_close(render(generator, latent, size, whole.grid), render(generator, latent, size),
                               atol=1e-5, rtol=0)


@pytest.mark.parametrize('stride,row,col', [(1, 3, 5), (1, 8, 0), (2, 0, 4)])
def test_a_patch_renders_the_pixels_of_the_full_render_it_covers(stride, row, col):
    """A K x K patch whose points are every stride-th pixel centre of an N x N image from pixel (row, col):
    its render equals those pixels of the full render (the same rays, so the same colours even from a
    noisy untrained SIREN), and so does the full render resampled at its points (as real images are)."""
    size, k = 16, 6
    scale = stride * (k - 1) / (size - 1)
    first = torch.tensor([[col, row]]) * 2 / (size - 1) - 1  # (x, y) of the patch's top-left point
    patch = Patches(patch_grid(torch.tensor([scale]), first + scale, k), torch.tensor([scale]))
    generator = tiny_generator()
    latent = latent_of(generator, 1)
    full = render(generator, latent, size)
    region = full[:, :, row:row + stride * k:stride, col:col + stride * k:stride]
    assert region.shape[-2:] == (k, k)
    torch.testing.assert_close(render(generator, latent, size, patch.grid), region, atol=1e-5, rtol=0)
    torch.testing.assert_close(patches.crop(full, patch), region, atol=1e-5, rtol=0)


def test_real_and_generated_patches_show_the_same_region():
    """A real image whose pixels hold their own image-plane point (x right, y up, -1 to 1 from corner pixel
    centre to corner pixel centre, as the ray sampler spans the image): resampled at random patches, each
    patch pixel holds the point the generated patch's ray through that pixel passes through."""
    size, k, batch = 64, 16, 6
    line = torch.linspace(-1, 1, size)
    plane = torch.stack([line.expand(size, size), line.flip(0)[:, None].expand(size, size)])  # [2, H, W]
    real = plane.expand(batch, -1, -1, -1)
    torch.manual_seed(0)
    drawn = patches.draw(batch, stage(size, patch_size=k, patch_scale_min=0.2), 'cpu')
    seen = patches.crop(real, drawn).flatten(2).transpose(1, 2)  # [B, K * K, 2]
    fov = 12
    _, directions = rays_from_cameras(torch.eye(4).expand(batch, 4, 4), fov, size, drawn.grid)
    through = directions[..., :2] / -directions[..., 2:] * (1 / torch.tan(torch.deg2rad(torch.tensor(fov / 2))))
    torch.testing.assert_close(seen, through, atol=1e-5, rtol=0)


def stage(img_size, **keys):
    """The settings of a stage at img_size with the patch keys given."""
    settings = tiny_settings(**keys)
    return dataclasses.replace(settings, rendering=dataclasses.replace(settings.rendering, img_size=img_size))


def test_drawn_patches_lie_inside_the_image_at_scales_from_the_minimum_to_one():
    torch.manual_seed(0)
    drawn = patches.draw(4000, stage(64, patch_size=32), 'cpu')
    assert drawn.grid.shape == (4000, 32, 32, 2) and drawn.scale.shape == (4000,)
    smallest = 31 / 63  # by default a patch pixel per image pixel
    assert smallest <= drawn.scale.min() < smallest + 0.01 and 0.99 < drawn.scale.max() <= 1
    torch.testing.assert_close(drawn.grid[:, -1, -1] - drawn.grid[:, 0, 0], 2 * drawn.scale[:, None].expand(-1, 2))
    assert drawn.grid.abs().max() <= 1 + 1e-6
    for axis in (0, 1):  # every place: patches touch each edge
        assert drawn.grid[..., axis].amin((1, 2)).min() < -0.999 and drawn.grid[..., axis].amax((1, 2)).max() > 0.999
    assert patches.draw(8, stage(64, patch_size=32, patch_scale_min=0.25), 'cpu').scale.min() >= 0.25
    with pytest.raises(curriculums.ConfigError, match='patch_scale_min'):
        patches.draw(8, stage(64, patch_size=32, patch_scale_min=0), 'cpu')
    # A stage whose images are no larger than the patch, or no patch_size: whole images, nothing drawn.
    state = torch.get_rng_state()
    for settings in (stage(32, patch_size=32), stage(64, patch_size=0), stage(64)):
        assert patches.draw(8, settings, 'cpu') == Patches()
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize('name', DISCRIMINATOR_CLASSES)
def test_the_discriminator_is_told_the_scale(name):
    """With patch_size, the scale changes D's output (through the newest and the fading adapter: alpha 1 and
    0); no scale means 1. Without it, D is the original (3-channel adapters: its checkpoints load)."""
    discriminator = build_discriminator(tiny_settings(discriminator=name, patch_size=32))
    images = torch.randn(2, 3, 32, 32)
    for alpha in (1.0, 0.0):
        with torch.no_grad():
            half, whole = (discriminator(images, alpha, scale=torch.full((2,), s))[0] for s in (0.5, 1.0))
            assert not torch.allclose(half, whole)
            assert torch.equal(discriminator(images, alpha)[0], whole)
    plain = build_discriminator(tiny_settings(discriminator=name))
    assert [adapter.model[0].in_channels for adapter in plain.fromRGB] == [3] * len(plain.fromRGB)
    assert [adapter.model[0].in_channels for adapter in discriminator.fromRGB] == [4] * len(plain.fromRGB)
    assert list(plain.state_dict()) == list(discriminator.state_dict())


class PatchCritic(torch.nn.Module):
    """D(x, s) = <w, x> + |x|^2 / 2 + s on K x K patches, so dD/dx = w + x is known in closed form; records
    what it is shown."""

    n_outputs = 1

    def __init__(self, size):
        super().__init__()
        self.w = torch.nn.Parameter(torch.linspace(-0.05, 0.05, 3 * size * size).reshape(3, size, size))
        self.seen = []

    def forward(self, images, alpha, scale=None, **kwargs):
        self.seen.append((images.detach().clone(), scale))
        score = (images * self.w).flatten(1).sum(1) + 0.5 * images.flatten(1).pow(2).sum(1)
        return (score + (0 if scale is None else scale))[:, None], None, None


def render_in_chunks(generator, z, drawn, settings):
    """The patches a step with two chunks renders (each chunk draws its cameras in turn)."""
    with torch.no_grad():
        return torch.cat([generator(part, settings.rendering, settings.camera, patch_grid=grid)[0]
                          for part, grid in zip(z.split(2), drawn.grid.split(2))])


def test_steps_judge_patches_with_their_scales_and_r1_on_the_real_patches():
    """The D step: fakes rendered at one draw of patches, reals resampled at a second, D told each scale,
    R1 on the real patches; the G step: fakes at its own patches. Losses against their closed forms."""
    k, seed = 8, 5
    settings = tiny_settings(patch_size=k, r1_lambda=10.0)
    settings = dataclasses.replace(settings, optimisation=dataclasses.replace(settings.optimisation, batch_split=2))
    critic = PatchCritic(k)
    trainer = make_trainer(settings, critic)
    reals = real_images()
    torch.manual_seed(seed)
    d_loss = steps.discriminator_step(trainer, reals.clone(), no_poses(), 1.0, settings).item()
    (fake, fake_scale), (real, real_scale) = critic.seen[1], critic.seen[0]

    torch.manual_seed(seed)
    fake_patches, real_patches = (patches.draw(4, settings, 'cpu') for _ in range(2))
    z = torch.randn(4, settings.networks.latent_dim)
    expected_fake = render_in_chunks(trainer.generator_ddp, z, fake_patches, settings)
    expected_real = patches.crop(reals, real_patches)
    assert fake.shape == real.shape == (4, 3, k, k)
    torch.testing.assert_close(fake, expected_fake, atol=1e-5, rtol=0)
    assert torch.equal(real, expected_real)
    assert torch.equal(fake_scale, fake_patches.scale) and torch.equal(real_scale, real_patches.scale)
    with torch.no_grad():
        g_preds, r_preds = critic(fake, 1, fake_scale)[0], critic(real, 1, real_scale)[0]
        expected = discriminator_gan_loss(g_preds, r_preds) + r1_penalty(critic.w + real, 10.0)
    assert d_loss == pytest.approx(expected.item(), rel=1e-5)

    critic.seen.clear()
    torch.manual_seed(seed)
    g_loss, _ = steps.generator_step(trainer, 4, 1.0, settings, 0, torch.device('cpu'))
    scales_seen = [scale for _, scale in critic.seen]
    torch.manual_seed(seed)
    gen_patches = patches.draw(4, settings, 'cpu')
    z = torch.randn(4, settings.networks.latent_dim)
    fake = render_in_chunks(trainer.generator_ddp, z, gen_patches, settings)
    with torch.no_grad():
        expected = [generator_gan_loss(critic(part, 1, scale)[0]).item()  # the mean over the two chunks
                    for part, scale in zip(fake.split(2), gen_patches.scale.split(2))]
    assert len(scales_seen) == 2 and all(map(torch.equal, scales_seen, gen_patches.scale.split(2)))
    assert g_loss.item() == pytest.approx(sum(expected) / 2, rel=1e-5)


@pytest.mark.parametrize('keys', [{}, {'patch_size': 0}, {'patch_size': None}])
def test_without_patch_keys_the_steps_are_unchanged(keys):
    """No patch training: D sees the real images themselves and the fakes a step always drew (z first, then
    the cameras: no random numbers drawn for patches), without a scale; G the same. (Against the code
    before patch training, two whole D and G steps with updates gave bit-identical weights and losses.)"""
    settings = tiny_settings(**keys)
    critic = PatchCritic(16)
    trainer = make_trainer(settings, critic)
    reals = real_images()
    torch.manual_seed(3)
    steps.discriminator_step(trainer, reals.clone(), no_poses(), 1.0, settings)
    torch.manual_seed(3)
    steps.generator_step(trainer, 4, 1.0, settings, 0, torch.device('cpu'))
    expected = generated_as_in_step(trainer, settings, 3)
    (real, real_scale), (fake, fake_scale), (g_fake, g_scale) = critic.seen
    assert torch.equal(real, reals) and torch.equal(fake, expected) and torch.equal(g_fake, expected)
    assert real_scale is fake_scale is g_scale is None
    assert [adapter.model[0].in_channels for adapter in build_discriminator(settings).fromRGB][0] == 3


def test_fade_in_follows_the_discriminators_input_size():
    """The discriminator fades in a new size when its input grows: at the patch stage (16 -> 32), not when
    the images grow under the same patch size."""
    curriculum = curriculums.get('SYNTHETIC_CPU_PATCH')
    assert curriculums.next_upsample_step(curriculum, 0) == 2000
    assert curriculums.last_upsample_step(curriculum, 2500) == curriculums.last_upsample_step(curriculum, 4500) == 2000
    grown = {**curriculum, 6000: {'img_size': 128}}
    assert curriculums.next_upsample_step(grown, 2000) == float('inf')
    assert curriculums.last_upsample_step(grown, 7000) == 2000


def test_patch_recipe_is_the_cpu_recipe_at_64_seen_through_32x32_patches():
    patch, recipe = curriculums.get('SYNTHETIC_CPU_PATCH'), curriculums.get('SYNTHETIC_CPU')
    same = [key for key in recipe if key != 2000]
    assert {key: patch[key] for key in same} == {key: recipe[key] for key in same} and set(patch) - set(recipe) == {
        'patch_size'}
    assert patch['patch_size'] == 32 and patch[2000] == {'img_size': 64}
    for step in curriculums.stage_steps(patch):
        metadata = curriculums.extract_metadata(patch, step)
        assert metadata['img_size'] <= metadata['synthetic_size']  # real images at the full resolution
        # What a step renders and judges: SYNTHETIC_CPU's sizes, 16x16 then 32x32.
        size = curriculums.discriminator_size(metadata['img_size'], metadata['patch_size'])
        assert size == curriculums.extract_metadata(recipe, step)['img_size']
    for name in ('CelebA', 'CARLA', 'CATS', 'SPATIALSIRENBASELINE', 'SYNTHETIC_CPU', 'CelebA_CPU'):
        curriculum = curriculums.get(name)
        assert 'patch_size' not in curriculums.extract_metadata(curriculum, max(curriculums.stage_steps(curriculum)))
    with pytest.raises(curriculums.ConfigError, match="stage 2000 sets 'patch_size'"):
        curriculums.apply_overrides(patch, {2000: {'patch_size': 16}})


# Whole 8x8 images for two steps, then 32x32 images seen through 16x16 patches (the discriminator fades 8 -> 16);
# with R1 and the pose loss on generated and (known poses) real patches.
PATCH_RUN = ['--curriculum', 'SYNTHETIC_CPU_PATCH', *TINY, '--set', 'patch_size=16', '--set', "0={'img_size': 8}",
             '--set', "2={'img_size': 32}", '--set', 'r1_lambda=1', '--set', 'pos_lambda=1', '--set',
             'use_real_poses=True', '--sample_interval', '2']


def test_training_with_patches_runs_and_resumes(tmp_path, synthetic_dir):  # noqa: F811
    out = tmp_path / 'run'
    train.main(['--output_dir', str(out), '--dataset_path', str(synthetic_dir), '--max_steps', '4', *PATCH_RUN])
    rows = stats(out)
    assert [row['img_size'] for row in rows] == [8, 8, 32, 32] and [row['alpha'] for row in rows[2:]] == [0.0, 0.5]
    assert all(torch.isfinite(torch.tensor([row['d_loss'], row['g_loss']])).all() for row in rows)
    disc = load_state(out, 'discriminator.pth')['state_dict']
    assert disc['fromRGB.0.model.0.weight'].shape[1] == 4
    assert (out / '4_fixed_ema.png').exists()  # sample grids: whole images
    train.main(['--output_dir', str(out), '--dataset_path', str(synthetic_dir), '--max_steps', '5', '--load_dir',
                str(out), *PATCH_RUN])
    assert load_state(out, 'training_state.pth')['step'] == 5


def test_two_ranks_train_on_patches_and_stay_identical(tmp_path, synthetic_dir):  # noqa: F811
    out = tmp_path / 'ddp'
    result = subprocess.run(
        [sys.executable, 'train.py', '--nproc', '2', '--port', str(free_port()), '--output_dir', str(out),
         '--dataset_path', str(synthetic_dir), '--max_steps', '3', *PATCH_RUN, '--set', 'batch_size=2',
         '--set', 'batch_split=2'],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert result.returncode == 0, result.stderr[-3000:]
    digests = load_state(out, 'training_state.pth')['rank_param_digests']
    assert len(digests) == 2 and digests[0] == digests[1]
