"""Checkpoints: plain state dicts and metadata that load with weights_only=True.

A run folder holds, as in the original release:
    generator.pth      {'format': 'pigan/generator', 'state_dict', 'step', 'epoch',
                        'curriculum_name', 'curriculum', 'options'}
    ema.pth, ema2.pth  {'format': 'pigan/ema', 'decay', 'num_updates', 'shadow', 'step'}
    discriminator.pth  {'format': 'pigan/discriminator', 'state_dict', 'discriminator', 'step'}
    optimizer_G.pth, optimizer_D.pth, scaler.pth   the objects' state_dict()s
Files are written to a temporary name and renamed, so a crash never leaves a
half-written checkpoint behind.
"""

import os
import pickle
import zipfile
from pathlib import Path

import torch

GENERATOR_FORMAT = 'pigan/generator'
EMA_FORMAT = 'pigan/ema'
DISCRIMINATOR_FORMAT = 'pigan/discriminator'


class CheckpointError(Exception):
    """A checkpoint is missing, corrupt, or not what was expected."""


def atomic_save(obj, path):
    """torch.save to path via a temporary file in the same folder and an atomic rename."""
    save_all(Path(path).parent, {Path(path).name: obj})


def save_all(folder, files):
    """Writes {file name: object} into folder, every file first to a temp name, then renamed."""
    folder = Path(folder)
    pending = []
    try:
        for name, obj in files.items():
            tmp = folder / f'.{name}.tmp{os.getpid()}'
            pending.append((tmp, folder / name))
            with open(tmp, 'wb') as f:
                torch.save(obj, f)
                f.flush()
                os.fsync(f.fileno())
    except BaseException:
        for tmp, _ in pending:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, final in pending:
        os.replace(tmp, final)


def safe_load(path, what='checkpoint'):
    """torch.load(weights_only=True) with one clear error for missing, truncated or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} not found: {path}")
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError:
        raise  # callers decide whether a pickle of foreign objects is acceptable
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is truncated or not a PyTorch checkpoint ({error}); "
                              f"use an intact copy") from None


def generator_checkpoint(generator, step, epoch, curriculum_name, curriculum, options=None):
    return {'format': GENERATOR_FORMAT, 'version': 1, 'state_dict': generator.state_dict(),
            'step': step, 'epoch': epoch, 'curriculum_name': curriculum_name,
            'curriculum': curriculum, 'options': options or {}}


def ema_checkpoint(ema, step):
    return {'format': EMA_FORMAT, 'version': 1, 'step': step, **ema.state_dict()}
