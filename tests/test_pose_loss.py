"""The pose loss in the discriminator step: on generated images (the original) and on real ones whose
pose the dataset knows; disc_fake_pose=False keeps only the real one."""

import contextlib
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import curriculums
import datasets
from checkpoints.builders import build_discriminator, build_generator
from training.steps import discriminator_step

BATCH = 4


@pytest.fixture(scope='module')
def models():
    metadata = curriculums.extract_metadata(curriculums.get('SYNTHETIC_CPU'), 0)
    metadata.update(hidden_dim=16, num_steps=4, img_size=8, nerf_noise=0, batch_size=BATCH)
    torch.manual_seed(0)
    generator, discriminator = build_generator(metadata), build_discriminator(metadata)
    ctx = SimpleNamespace(generator_ddp=generator, discriminator_ddp=discriminator,
                          scaler=torch.amp.GradScaler('cpu', enabled=False), autocast=contextlib.nullcontext)
    return ctx, metadata


def d_loss(models, real_poses, **changes):
    ctx, metadata = models
    torch.manual_seed(1)  # the same fakes and ray jitter for every call
    real_imgs = torch.rand(BATCH, 3, 8, 8) * 2 - 1
    return discriminator_step(ctx, real_imgs, real_poses, 1, {**metadata, **changes}).item()


def pose_predictions(models, real):
    """D's (pitch, yaw) for the step's real images (real=True) or for its fakes, and the fakes' camera poses."""
    ctx, metadata = models
    torch.manual_seed(1)
    real_imgs = torch.rand(BATCH, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        fakes, positions = ctx.generator_ddp(torch.randn(BATCH, metadata['latent_dim']), **metadata)
        _, _, predicted = ctx.discriminator_ddp(real_imgs if real else fakes, 1)
    return predicted, positions


def test_fake_pose_term_follows_disc_fake_pose(models):
    unknown = torch.full((BATCH, 2), math.nan)  # e.g. CelebA: no real pose enters the loss
    without_pose = d_loss(models, unknown, pos_lambda=0)
    predicted, positions = pose_predictions(models, real=False)
    fake_term = 15 * F.mse_loss(predicted, positions).item()
    assert fake_term > 1e-3
    assert d_loss(models, unknown, pos_lambda=15) == pytest.approx(without_pose + fake_term, rel=1e-4)
    assert d_loss(models, unknown, pos_lambda=15, disc_fake_pose=False) == pytest.approx(without_pose, rel=1e-6)


def test_real_pose_term_stays_without_the_fake_one(models):
    known = torch.tensor([[1.5, 1.4], [1.6, 1.8], [1.7, 1.2], [1.4, 1.6]])
    without_pose = d_loss(models, known, pos_lambda=0)
    predicted, _ = pose_predictions(models, real=True)
    real_term = 15 * F.mse_loss(predicted, known).item()
    assert real_term > 1e-3
    assert d_loss(models, known, pos_lambda=15, disc_fake_pose=False) == pytest.approx(without_pose + real_term,
                                                                                      rel=1e-4)


def test_images_without_poses_are_refused(tmp_path):
    for index in range(2):
        Image.new('RGB', (8, 8), (index * 100, 0, 0)).save(tmp_path / f'{index}.png')
    dataset = datasets.ImageFolder(str(tmp_path), img_size=8)
    later_off = [{'pos_lambda': 15}, {'disc_fake_pose': False, 'pos_lambda': 15}]  # turned off by a later stage
    with pytest.raises(datasets.DatasetError, match='no known camera poses.*disc_fake_pose'):
        datasets.check_known_poses(dataset, 'ImageFolder', later_off)
    datasets.check_known_poses(dataset, 'ImageFolder', [{'pos_lambda': 15}])  # the original's loss needs none
    datasets.check_known_poses(dataset, 'ImageFolder', [{'disc_fake_pose': False, 'pos_lambda': 0}])  # no pose loss
