"""The SYNTHETIC_CPU recipe: a valid curriculum, a cheap discriminator, and real training steps."""

import json
import time

import pytest
import torch

import curriculums
import train
from checkpoints.builders import build_discriminator, build_generator
from discriminators.discriminators import CCSEncoderDiscriminator, NarrowCCSEncoderDiscriminator
from inference.rendering import inference_rendering
from settings import Settings
from synthetic.dataset import make_synthetic_dataset
from training import monitor


def test_curriculum_is_valid_at_every_stage():
    curriculum = curriculums.get('SYNTHETIC_CPU')
    sizes = []
    for step in curriculums.stage_steps(curriculum):
        metadata = curriculums.extract_metadata(curriculum, step)
        settings = Settings.at_step(curriculum, step)
        sizes.append(metadata['img_size'])
        # Unposed and without a pose loss (bench/RESULTS.md, run 8): it learns from the images alone.
        assert metadata['dataset'] == 'Synthetic' and metadata['pos_lambda'] == 0
        assert not metadata.get('use_real_poses', False)
        assert metadata['img_size'] <= metadata['synthetic_size']
        generator, discriminator = build_generator(settings.networks), build_discriminator(settings)
        assert generator.density_scale == 5.0  # opaque heads within minutes (bench/RESULTS.md, run 5)
        images, poses = generator(torch.randn(2, metadata['latent_dim']), **dict(metadata, img_size=8))
        assert images.shape == (2, 3, 8, 8) and poses.shape == (2, 2)
        prediction, latent, position = discriminator(torch.zeros(2, 3, metadata['img_size'], metadata['img_size']),
                                                     alpha=1)
        assert prediction.shape == (2, 1) and latent.shape == (2, 256) and position.shape == (2, 2)
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]  # progressive: small images first


def test_recipe_draws_empty_space_as_its_white_background():
    # Trained on heads over pure white with white_back, and rendered the same way at inference:
    # last_back would hand the leftover light to the last sample instead of the white background.
    settings = Settings.at_step(curriculums.get('SYNTHETIC_CPU'), 0)
    assert settings.data.synthetic_background == 'white'
    rendering = inference_rendering(settings, image_size=8)
    assert rendering.white_back and not rendering.last_back
    generator = build_generator(settings.networks)
    with torch.no_grad():  # no density anywhere: every pixel is the background
        generator.siren.final_layer.bias[-1] = -1e4
        images, _ = generator(torch.randn(2, settings.networks.latent_dim), rendering, settings.camera)
    assert torch.allclose(images, torch.ones_like(images), atol=1e-4)


def test_narrow_discriminator_keeps_interface_at_a_fraction_of_the_size():
    narrow, original = NarrowCCSEncoderDiscriminator(), CCSEncoderDiscriminator()
    assert narrow.img_size_to_layer == original.img_size_to_layer
    # The cost is in the blocks at 16x16 and above: there it is at most a quarter as wide.
    for size in (16, 32, 64):
        layer = narrow.img_size_to_layer[size]
        assert narrow.channels[layer] * 4 <= original.channels[layer]
    for size in (16, 32, 64):
        images = torch.randn(3, 3, size, size)
        for alpha in (0.5, 1):
            prediction, latent, position = narrow(images, alpha)
            assert prediction.shape == (3, 1) and latent.shape == (3, 256) and position.shape == (3, 2)
            assert torch.isfinite(prediction).all()
    with pytest.raises(ValueError, match='square images'):
        narrow(torch.randn(1, 3, 24, 24), 1)


# The trainings below pass --device cpu: the recipe and its time budget are the CPU's on any machine.
@pytest.fixture(scope='module')
def heads(tmp_path_factory):
    folder = tmp_path_factory.mktemp('data') / 'synthetic_32'
    make_synthetic_dataset(str(folder), 16, img_size=32, seed=0, progress=False)
    return folder


def test_recipe_trains_across_its_stage_change(tmp_path, heads):
    curriculum = curriculums.get('SYNTHETIC_CPU')
    second = curriculums.stage_steps(curriculum)[1]
    out = tmp_path / 'run'
    # Real widths, fewer samples per ray; start one step before the 16 -> 32 stage change.
    train.main(['--curriculum', 'SYNTHETIC_CPU', '--device', 'cpu', '--output_dir', str(out),
                '--dataset_path', str(heads),
                '--set_step', str(second - 1), '--max_steps', str(second + 1), '--set', 'num_steps=4',
                '--set', 'batch_size=4', '--num_workers', '0', '--eval_freq', '0', '--sample_interval', '1000',
                '--log_every', '1', '--sample_size', '16'])
    rows = [json.loads(line) for line in (out / 'stats.jsonl').read_text().splitlines()]
    first, last = curriculums.extract_metadata(curriculum, second - 1), curriculums.extract_metadata(curriculum, second)
    assert [(row['step'], row['img_size']) for row in rows] == [(second, first['img_size']),
                                                                 (second + 1, last['img_size'])]
    assert all(torch.isfinite(torch.tensor([row['d_loss'], row['g_loss']])).all() for row in rows)
    state = torch.load(out / 'discriminator.pth', weights_only=True)
    assert state['discriminator'] == 'NarrowCCSEncoderDiscriminator' and state['step'] == second + 1


def test_max_minutes_stops_cleanly(tmp_path, heads):
    out = tmp_path / 'run'
    train.main(['--curriculum', 'SYNTHETIC_CPU', '--device', 'cpu', '--output_dir', str(out),
                '--dataset_path', str(heads),
                '--max_minutes', '0', '--set', 'num_steps=4', '--set', 'batch_size=4', '--num_workers', '0',
                '--eval_freq', '0', '--sample_interval', '1000', '--log_every', '1'])
    # The deadline is checked after each step: one step, then a saved checkpoint.
    assert torch.load(out / 'training_state.pth', weights_only=True)['step'] == 1


def test_max_minutes_counts_start_up(tmp_path, heads):
    out = tmp_path / 'run'
    # A process started 50 s ago with a one-minute budget: the 10 s left cannot hold a step plus the
    # final save's reserve, so it stops after its first step.
    train.main(['--curriculum', 'SYNTHETIC_CPU', '--device', 'cpu', '--output_dir', str(out),
                '--dataset_path', str(heads),
                '--max_minutes', '1', '--set', 'num_steps=4', '--set', 'batch_size=4', '--num_workers', '0',
                '--eval_freq', '0', '--sample_interval', '1000', '--log_every', '1'], started=time.time() - 50)
    assert torch.load(out / 'training_state.pth', weights_only=True)['step'] == 1


def test_deadline_keeps_room_for_the_final_save(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(time, 'time', lambda: clock[0])
    deadline = monitor.Deadline(started=1000.0, minutes=1)  # the process must end by 1060
    with deadline.timing_save():
        clock[0] += 8  # a save takes 8 s
    while not deadline.reached():
        clock[0] += 2  # steps of 2 s
    # It stops at the first step after which one more step, 1.25 saves and the teardown would not fit
    # (1044 + 2 + 10 + 3 < 1060 <= 1046 + 2 + 10 + 3), so the final save ends well in time.
    assert clock[0] == 1046
    assert not monitor.Deadline(started=0.0, minutes=None).reached()
