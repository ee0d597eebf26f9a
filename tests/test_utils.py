"""utils: atomic writes leave the old file whole when writing fails; UserError is the one list of user errors."""

import os

import pytest

import torch

from checkpoints.format import atomic_save
from utils.cli import run_cli
from utils.errors import UserError
from utils.files import DiskFullError, atomic_write, atomic_writes


def test_atomic_write_replaces_the_file_when_the_block_succeeds(tmp_path):
    path = tmp_path / 'a.json'
    path.write_text('old')
    with atomic_write(path, 'w') as file:
        file.write('new')
        assert path.read_text() == 'old'  # nothing visible until the block ends
    assert path.read_text() == 'new' and os.listdir(tmp_path) == ['a.json']


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / 'a.bin'
    path.write_bytes(b'old')
    with pytest.raises(RuntimeError, match='disk full'):
        with atomic_write(path) as file:
            file.write(b'half of the new')
            raise RuntimeError('disk full')
    assert path.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['a.bin']  # the temporary file is gone
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(tmp_path / 'b.bin') as file:
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == ['a.bin']  # no new file either


def test_atomic_writes_rename_none_when_one_fails(tmp_path):
    for name in ('x', 'y'):
        (tmp_path / name).write_text('old')
    with pytest.raises(ValueError):
        with atomic_writes([tmp_path / 'x', tmp_path / 'y'], 'w') as (x, y):
            x.write('new')
            y.write('new')
            raise ValueError
    assert {name: (tmp_path / name).read_text() for name in ('x', 'y')} == {'x': 'old', 'y': 'old'}
    with atomic_writes([tmp_path / 'x', tmp_path / 'y'], 'w') as (x, y):
        x.write('X')
        y.write('Y')
    assert sorted(os.listdir(tmp_path)) == ['x', 'y'] and (tmp_path / 'y').read_text() == 'Y'


def test_a_full_disk_is_one_clear_error_and_the_last_checkpoint_stays(small_disk):
    path = small_disk / 'generator.pth'
    atomic_save({'weights': torch.ones(10)}, path)
    # torch.save reports the full disk as a RuntimeError of its zip writer; it must read as a full disk.
    with pytest.raises(DiskFullError, match=rf'no space left on the disk of {small_disk} .* generator.pth: free'):
        atomic_save({'weights': torch.zeros(2 ** 21)}, path)  # 8 MiB on a 4 MiB disk
    assert torch.equal(torch.load(path, weights_only=True)['weights'], torch.ones(10))
    assert os.listdir(small_disk) == ['generator.pth']  # the temporary file is gone, and its space is free again
    with pytest.raises(DiskFullError, match='notes.txt'):  # plain writes: an OSError with ENOSPC
        with atomic_write(small_disk / 'notes.txt', 'w') as file:
            file.write('x' * 2 ** 23)
    assert os.listdir(small_disk) == ['generator.pth']


def test_other_errors_on_a_full_disk_stay_what_they_are(small_disk):
    with open(small_disk / 'filler', 'wb') as filler:  # the disk full to the last byte
        with pytest.raises(OSError):
            while True:
                filler.write(bytes(2 ** 16))
                filler.flush()
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C while data waits in the buffer: closing cannot flush it
        with atomic_write(small_disk / 'a.bin') as file:
            file.write(b'some bytes')
            raise KeyboardInterrupt
    with pytest.raises(PermissionError):
        with atomic_write(small_disk / 'b.bin'):
            raise PermissionError('not a full disk')
    assert os.listdir(small_disk) == ['filler']


def test_scripts_report_a_full_disk_under_any_writer_in_one_line(small_disk):
    def write_too_much():
        with open(small_disk / 'big.bin', 'wb') as file:
            file.write(bytes(2 ** 23))  # a plain write, not an atomic one
    with pytest.raises(SystemExit) as stopped:
        run_cli(write_too_much)
    # A buffered write's OSError names no file (an open's would).
    assert str(stopped.value) == 'error: no space left on the disk: free some space there or write elsewhere'

    with pytest.raises(FileNotFoundError):  # other OS errors keep their traceback
        run_cli(lambda: open(small_disk / 'no such folder' / 'x', 'w'))


def test_the_errors_scripts_report_in_one_line_are_user_errors():
    from checkpoints import CheckpointError
    from checkpoints.format import ForeignPickleError
    from curriculums import ConfigError
    from datasets import DatasetError
    from metrics import ImageFolderError, InceptionWeightsError
    from preprocessing.prepare import PreparationError
    from training.distributed import LaunchError, WorkerError
    from training.stopping import TrainingInterrupted
    from training.training_loop import TrainingDiverged
    for error in (CheckpointError, ForeignPickleError, ConfigError, DatasetError, ImageFolderError,
                  InceptionWeightsError, PreparationError, LaunchError, WorkerError, TrainingInterrupted,
                  TrainingDiverged, DiskFullError):
        assert issubclass(error, UserError), error
    assert issubclass(ConfigError, ValueError)  # the bases they had stay
