"""Checkpoint writing is atomic and reading never runs code."""

import os

import pytest
import torch

from tiny_checkpoint import make_tiny_run
from checkpoints import CheckpointError, atomic_save, load_generator, save_all


class ExplodesWhenPickled:
    def __reduce__(self):
        raise RuntimeError('killed while writing')


def test_interrupted_save_keeps_previous_checkpoint(tmp_path):
    save_all(tmp_path, {'generator.pth': {'step': 1}, 'ema.pth': {'step': 1}})
    before = {name: (tmp_path / name).read_bytes() for name in ('generator.pth', 'ema.pth')}
    with pytest.raises(RuntimeError, match='killed'):
        save_all(tmp_path, {'generator.pth': {'step': 2, 'big': torch.zeros(1000)},
                            'ema.pth': {'step': 2, 'bad': ExplodesWhenPickled()}})
    assert {name: (tmp_path / name).read_bytes() for name in before} == before
    assert sorted(os.listdir(tmp_path)) == ['ema.pth', 'generator.pth']  # no temporary files left


def test_atomic_save_replaces_whole_file(tmp_path):
    atomic_save({'a': torch.ones(3)}, tmp_path / 'x.pth')
    with pytest.raises(RuntimeError):
        atomic_save({'a': ExplodesWhenPickled()}, tmp_path / 'x.pth')
    assert torch.equal(torch.load(tmp_path / 'x.pth', weights_only=True)['a'], torch.ones(3))


def test_checkpoints_load_weights_only_and_restore_curriculum(tmp_path):
    path = make_tiny_run(tmp_path, step=123)
    for name in ('generator.pth', 'ema.pth', 'ema2.pth'):
        torch.load(tmp_path / name, weights_only=True)
    generator, settings = load_generator(path)
    assert generator.step == 123 and settings.rendering.img_size == 16 and settings.networks.hidden_dim == 16
    raw, _ = load_generator(path, ema=None)
    ema_param = dict(generator.named_parameters())['siren.final_layer.bias']
    raw_param = dict(raw.named_parameters())['siren.final_layer.bias']
    assert torch.allclose(ema_param, raw_param + 0.01)
    _, overridden = load_generator(path, overrides={'fov': 20})
    assert overridden.camera.fov == 20


def test_bad_checkpoints_are_clear_errors(tmp_path):
    path = make_tiny_run(tmp_path)
    with pytest.raises(CheckpointError, match='not found'):
        load_generator(tmp_path / 'missing.pth')
    (tmp_path / 'ema.pth').unlink()
    with pytest.raises(CheckpointError, match='--no_ema'):
        load_generator(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match='truncated'):
        load_generator(path, ema=None)
    torch.save({'something': 'else'}, path)
    with pytest.raises(CheckpointError, match='not a generator checkpoint'):
        load_generator(path, ema=None)
