"""The pose loss in the discriminator step: on generated images (the original) and, under use_real_poses,
on real ones whose pose the dataset knows; disc_fake_pose=False keeps only the real one."""

import contextlib
import math

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import curriculums
import datasets
from checkpoints.builders import build_discriminator, build_generator
from settings import Settings
from training.steps import Trainer, discriminator_step

BATCH = 4


@pytest.fixture(scope='module')
def models():
    metadata = curriculums.extract_metadata(curriculums.get('SYNTHETIC_CPU'), 0)
    metadata.update(hidden_dim=16, num_steps=4, img_size=8, batch_size=BATCH)
    settings = Settings.from_metadata(metadata)
    torch.manual_seed(0)
    generator, discriminator = build_generator(settings.networks), build_discriminator(settings)
    trainer = Trainer(generator, discriminator, optimizer_G=None, optimizer_D=None,
                      scaler=torch.amp.GradScaler('cpu', enabled=False), autocast=contextlib.nullcontext,
                      no_sync=None)  # the discriminator's loss alone: no optimiser steps
    return trainer, metadata


def d_loss(models, real_poses, **changes):
    trainer, metadata = models
    torch.manual_seed(1)  # the same fakes and ray jitter for every call
    real_imgs = torch.rand(BATCH, 3, 8, 8) * 2 - 1
    return discriminator_step(trainer, real_imgs, real_poses, 1, Settings.from_metadata({**metadata, **changes})).item()


def pose_predictions(models, real):
    """D's (pitch, yaw) for the step's real images (real=True) or for its fakes, and the fakes' camera poses."""
    trainer, metadata = models
    torch.manual_seed(1)
    real_imgs = torch.rand(BATCH, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        settings = Settings.from_metadata(metadata)
        fakes, positions = trainer.generator_ddp(torch.randn(BATCH, metadata['latent_dim']), settings.rendering,
                                             settings.camera)
        _, _, predicted = trainer.discriminator_ddp(real_imgs if real else fakes, 1)
    return predicted, positions


def test_fake_pose_term_follows_disc_fake_pose(models):
    unknown = torch.full((BATCH, 2), math.nan)  # e.g. CelebA: no real pose enters the loss
    without_pose = d_loss(models, unknown, pos_lambda=0)
    predicted, positions = pose_predictions(models, real=False)
    fake_term = 15 * F.mse_loss(predicted, positions).item()
    assert fake_term > 1e-3
    assert d_loss(models, unknown, pos_lambda=15) == pytest.approx(without_pose + fake_term, rel=1e-4)
    assert d_loss(models, unknown, pos_lambda=15, disc_fake_pose=False) == pytest.approx(without_pose, rel=1e-6)


def test_real_pose_term_needs_use_real_poses(models):
    known = torch.tensor([[1.5, 1.4], [1.6, 1.8], [1.7, 1.2], [1.4, 1.6]])
    without_pose = d_loss(models, known, pos_lambda=0)
    predicted, _ = pose_predictions(models, real=True)
    real_term = 15 * F.mse_loss(predicted, known).item()
    assert real_term > 1e-3
    posed = dict(pos_lambda=15, disc_fake_pose=False)
    assert d_loss(models, known, use_real_poses=True, **posed) == pytest.approx(without_pose + real_term, rel=1e-4)
    # Unposed (the default): the data's poses do not reach the loss, as if it had none.
    assert d_loss(models, known, **posed) == pytest.approx(without_pose, rel=1e-6)
    assert d_loss(models, known, use_real_poses=False, **posed) == pytest.approx(without_pose, rel=1e-6)


def test_shipped_curricula_are_unposed_but_the_posed_variant():
    for name in curriculums.CURRICULA:
        settings = Settings.at_step(curriculums.get(name), 0)
        assert settings.losses.use_real_poses == (name == 'SYNTHETIC_CPU_POSED'), name
    posed, unposed = curriculums.get('SYNTHETIC_CPU_POSED'), curriculums.get('SYNTHETIC_CPU')
    assert {k: v for k, v in posed.items() if k not in ('use_real_poses', 'pos_lambda')} == \
        {k: v for k, v in unposed.items() if k != 'pos_lambda'}
    assert posed['pos_lambda'] > 0  # with a zero weight the known poses would reach no loss


def stage(**changes):
    """The settings of a stage of SYNTHETIC_CPU with changes."""
    return Settings.from_metadata({**curriculums.extract_metadata(curriculums.get('SYNTHETIC_CPU'), 0), **changes})


def test_images_without_poses_are_refused(tmp_path):
    for index in range(2):
        Image.new('RGB', (8, 8), (index * 100, 0, 0)).save(tmp_path / f'{index}.png')
    dataset = datasets.ImageFolder(str(tmp_path), img_size=8)
    later_on = [stage(pos_lambda=15), stage(use_real_poses=True, pos_lambda=15)]  # turned on by a later stage
    with pytest.raises(datasets.DatasetError, match='no known camera poses for use_real_poses'):
        datasets.check_known_poses(dataset, 'ImageFolder', later_on)
    with pytest.raises(datasets.DatasetError, match='disc_fake_pose=False with use_real_poses=False'):
        datasets.check_known_poses(dataset, 'ImageFolder', [stage(pos_lambda=15, disc_fake_pose=False)])
    datasets.check_known_poses(dataset, 'ImageFolder', [stage(pos_lambda=15)])  # the original's loss needs none
    datasets.check_known_poses(dataset, 'ImageFolder', [stage(use_real_poses=True, pos_lambda=0)])  # no pose loss
