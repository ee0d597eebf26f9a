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

import curriculums
from torch_utils.models import build_generator

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


def resolve_curriculum(checkpoint_curriculum, name=None, overrides=None):
    """The curriculum to use: a named one if given, else the checkpoint's, plus overrides."""
    curriculum = curriculums.get(name) if name else dict(checkpoint_curriculum or {})
    if not curriculum:
        raise CheckpointError("this checkpoint does not record its curriculum; pass --curriculum NAME")
    return curriculums.apply_overrides(curriculum, overrides)


def load_generator(path, ema='ema.pth', curriculum=None, overrides=None, device='cpu'):
    """Loads a generator for inference from this project's or the original release's files.

    path: generator.pth. ema: file name (in the same folder) or path of the EMA
    weights to use, or None for the raw weights. curriculum: a curriculum name to
    use instead of the recorded one; overrides: curriculum keys to change.
    Returns (generator in eval mode on device, metadata at the checkpoint's step).
    """
    path = Path(path)
    ema_path = None if ema is None else (Path(ema) if Path(ema).is_absolute() or os.sep in str(ema)
                                         else path.with_name(str(ema)))
    try:
        checkpoint = safe_load(path, 'generator checkpoint')
    except pickle.UnpicklingError:
        from torch_utils import official
        return official.load_official_generator(path, ema_path, curriculum, overrides, device)
    if not isinstance(checkpoint, dict) or checkpoint.get('format') != GENERATOR_FORMAT:
        raise CheckpointError(f"{path} is not a generator checkpoint (no '{GENERATOR_FORMAT}' header)")

    full_curriculum = resolve_curriculum(checkpoint.get('curriculum'), curriculum, overrides)
    metadata = curriculums.extract_metadata(full_curriculum, checkpoint['step'])
    generator = build_generator(metadata)
    generator.load_state_dict(checkpoint['state_dict'])
    if ema_path is not None:
        apply_ema(generator, ema_path)
    generator.step, generator.epoch = checkpoint['step'], checkpoint.get('epoch', 0)
    generator.to(device).eval()
    generator.set_device(device)
    return generator, metadata


def apply_ema(generator, ema_path):
    if not ema_path.is_file():
        raise CheckpointError(f"EMA weights not found: {ema_path}; use --no_ema for the raw weights "
                              f"or --ema PATH to name the EMA file")
    try:
        state = safe_load(ema_path, 'EMA checkpoint')
    except pickle.UnpicklingError as error:
        from torch_utils.official import refusal
        raise refusal(ema_path, error) from None
    if not isinstance(state, dict) or state.get('format') != EMA_FORMAT:
        raise CheckpointError(f"{ema_path} is not an EMA checkpoint of this project")
    params = dict(generator.named_parameters())
    missing = set(params) - set(state['shadow'])
    if missing:
        raise CheckpointError(f"{ema_path} does not match the generator (missing {sorted(missing)[0]}, ...)")
    with torch.no_grad():
        for name, value in state['shadow'].items():
            params[name].copy_(value)
