"""Checkpoints of the original release: loaded without running them, rendering what the original did."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hostile_files import Payload, save_sneaky
from reference import OFFICIAL_DIR, close, max_rel
from tiny_checkpoint import make_tiny_run
from checkpoints import CheckpointError, load_generator

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = OFFICIAL_DIR / 'generator.pth'

# Skipped only outside CI: there the fixtures must be present.
pytestmark = pytest.mark.skipif(not GENERATOR.exists() and not os.environ.get('CI'),
                                reason=f'official fixture not found at {OFFICIAL_DIR}')


@pytest.fixture(scope='module')
def expected():
    return torch.load(OFFICIAL_DIR / 'expected_renders.pt', weights_only=True)


@pytest.fixture(scope='module')
def official(expected):
    return load_generator(GENERATOR, curriculum='CelebA')


def assert_renders_expected(generator, settings, expected):
    # The original's keyword form: the settings' plain keys, as its scripts passed them
    options = {**settings.as_metadata(), **expected['render_options'], 'sample_dist': None, 'h_stddev': 0, 'v_stddev': 0,
               'hierarchical_sample': False, 'nerf_noise': 0, 'perturb': False, 'white_back': False}
    for render in expected['renders']:
        pixels, depth = generator.staged_forward(expected['z'], psi=1, h_mean=render['h_mean'],
                                                 v_mean=render['v_mean'], **{k: v for k, v in options.items()
                                                                             if k not in ('h_mean', 'v_mean')})
        assert close(pixels, render['pixels']), max_rel(pixels, render['pixels'])
        assert close(depth, render['depth']), max_rel(depth, render['depth'])


def test_official_checkpoint_renders_like_the_original(official, expected):
    generator, settings = official
    assert_renders_expected(generator, settings, expected)


def test_step_and_epoch_select_the_curriculum_stage(official):
    generator, settings = official
    assert (generator.step, generator.epoch) == (41000, 7)
    assert settings.networks.model == 'SPATIALSIRENBASELINE' and settings.rendering.img_size == 64  # CelebA at 41k
    assert settings.networks.hidden_dim == generator.siren.hidden_dim


def test_raw_weights_differ_from_ema(official):
    averaged, _ = official
    raw, _ = load_generator(GENERATOR, ema=None, curriculum='CelebA')
    pairs = zip(averaged.parameters(), raw.parameters())
    assert any(not torch.equal(a, r) for a, r in pairs)


def test_overrides_apply_to_official_checkpoints():
    _, settings = load_generator(GENERATOR, ema=None, curriculum='CelebA', overrides={'fov': 18})
    assert settings.camera.fov == 18


def test_original_density_stays_unscaled_under_any_curriculum():
    generator, settings = load_generator(GENERATOR, ema=None, curriculum='SYNTHETIC_CPU')
    assert settings.networks.density_scale == 1.0 and generator.density_scale == 1.0


def test_missing_curriculum_is_explained():
    with pytest.raises(CheckpointError, match='--curriculum CelebA'):
        load_generator(GENERATOR)


def test_missing_ema_is_explained(tmp_path):
    (tmp_path / 'generator.pth').symlink_to(GENERATOR)
    with pytest.raises(CheckpointError, match='--no_ema'):
        load_generator(tmp_path / 'generator.pth', curriculum='CelebA')


def test_truncated_files_are_explained(tmp_path):
    data = GENERATOR.read_bytes()
    (tmp_path / 'generator.pth').write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match='truncated'):
        load_generator(tmp_path / 'generator.pth', curriculum='CelebA')
    (tmp_path / 'tiny').mkdir()
    tiny = make_tiny_run(tmp_path / 'tiny')
    ema = tmp_path / 'tiny' / 'ema.pth'
    ema.write_bytes(ema.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match='truncated'):
        load_generator(tiny)


@pytest.mark.parametrize('kind', ['os.system', 'foreign class', 'torch class not on the list'])
def test_pickles_naming_anything_else_are_refused(tmp_path, kind):
    marker = tmp_path / 'payload_ran'
    path = tmp_path / 'generator.pth'
    if kind == 'os.system':
        torch.save({'model': Payload(marker)}, path)
        culprit = 'system'
    elif kind == 'foreign class':
        save_sneaky(path, marker)
        culprit = 'stranger_code.Sneaky'
    else:
        torch.save(torch.nn.Conv2d(1, 1, 1), path)
        culprit = 'Conv2d'
    with pytest.raises(CheckpointError, match=f'refusing to load.*{culprit}'):
        load_generator(path, ema=None, curriculum='CelebA')
    assert not marker.exists()


def test_a_malicious_ema_beside_a_good_generator_is_refused(tmp_path):
    marker = tmp_path / 'payload_ran'
    (tmp_path / 'generator.pth').symlink_to(GENERATOR)
    torch.save([Payload(marker)], tmp_path / 'ema.pth')
    with pytest.raises(CheckpointError, match='refusing to load'):
        load_generator(tmp_path / 'generator.pth', curriculum='CelebA')
    tiny = tmp_path / 'tiny'
    tiny.mkdir()
    make_tiny_run(tiny)
    torch.save([Payload(marker)], tiny / 'ema.pth')
    with pytest.raises(CheckpointError, match='refusing to load'):
        load_generator(tiny / 'generator.pth')
    assert not marker.exists()


def test_converter_output_loads_with_weights_only_and_renders_the_same(tmp_path, expected):
    # Through the command line, to prove the script runs as a program.
    result = subprocess.run([sys.executable, str(ROOT / 'convert_official_checkpoint.py'), str(GENERATOR),
                             '--curriculum', 'CelebA', '--output_dir', str(tmp_path / 'converted')],
                            cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert result.returncode == 0, result.stderr
    converted = tmp_path / 'converted'
    assert sorted(p.name for p in converted.iterdir()) == ['ema.pth', 'generator.pth']  # no ema2 in the fixture
    for name in ('generator.pth', 'ema.pth'):
        torch.load(converted / name, weights_only=True)
    generator, settings = load_generator(converted / 'generator.pth')  # curriculum recorded: none needed
    assert (generator.step, generator.epoch, settings.data.dataset) == (41000, 7, 'CelebA')
    assert_renders_expected(generator, settings, expected)


def test_converter_needs_a_curriculum(capsys):
    import convert_official_checkpoint
    with pytest.raises(SystemExit):
        convert_official_checkpoint.main([str(GENERATOR), '--output_dir', 'unused'])
