"""Loading a generator for inference, from this project's or the original release's files."""

import os
import pickle
from pathlib import Path

import torch

import curriculums

from . import official
from .builders import build_generator, resolve_curriculum
from .format import EMA_FORMAT, GENERATOR_FORMAT, CheckpointError, safe_load


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
        raise official.refusal(ema_path, error) from None
    if not isinstance(state, dict) or state.get('format') != EMA_FORMAT:
        raise CheckpointError(f"{ema_path} is not an EMA checkpoint of this project")
    params = dict(generator.named_parameters())
    missing = set(params) - set(state['shadow'])
    if missing:
        raise CheckpointError(f"{ema_path} does not match the generator (missing {sorted(missing)[0]}, ...)")
    with torch.no_grad():
        for name, value in state['shadow'].items():
            params[name].copy_(value)
