"""Loading a generator for inference, from this project's or the original release's files."""

import os
from pathlib import Path

import torch

from settings import Settings

from . import official, validation
from .builders import build_generator, resolve_curriculum
from .format import EMA_FORMAT, GENERATOR_FORMAT, CheckpointError


def load_generator(path, ema='ema.pth', curriculum=None, overrides=None, device='cpu'):
    """Loads a generator for inference from this project's or the original release's files.

    path: generator.pth. ema: file name (in the same folder) or path of the EMA
    weights to use, or None for the raw weights. curriculum: a curriculum name to
    use instead of the recorded one; overrides: curriculum keys to change.
    Returns (generator in eval mode on device, settings.Settings at the checkpoint's step).
    """
    path = Path(path)
    ema_path = None if ema is None else (Path(ema) if Path(ema).is_absolute() or os.sep in str(ema)
                                         else path.with_name(str(ema)))
    tree = official.read_original_pickle(path, 'generator checkpoint')
    if official.is_original(tree):
        return official.load_official_generator(path, ema_path, curriculum, overrides, device, tree)
    if not isinstance(tree, dict) or tree.get('format') != GENERATOR_FORMAT:
        raise CheckpointError(f"{path} is not a generator checkpoint (no '{GENERATOR_FORMAT}' header)")
    checkpoint = validation.check_generator_file(tree, path, GENERATOR_FORMAT)

    full_curriculum = resolve_curriculum(checkpoint['curriculum'], curriculum, overrides, path)
    settings = Settings.at_step(full_curriculum, checkpoint['step'], str(path))
    generator = build_generator(settings.networks)
    validation.load_module_state(generator, checkpoint['state_dict'], path)
    if ema_path is not None:
        apply_ema(generator, ema_path)
    generator.step, generator.epoch = checkpoint['step'], checkpoint['epoch']
    generator.to(device).eval()
    generator.set_device(device)
    return generator, settings


def apply_ema(generator, ema_path):
    """Copies the averaged weights of ema_path (this project's or the original's EMA file) into generator."""
    ema_path = Path(ema_path)
    if not ema_path.is_file():
        raise CheckpointError(f"EMA weights not found: {ema_path}; use --no_ema for the raw weights "
                              f"or --ema PATH to name the EMA file")
    tree = official.read_original_pickle(ema_path, 'EMA checkpoint')
    params = dict(generator.named_parameters())
    if official.is_original(tree):
        shadow = official.read_official_ema(ema_path, params, tree)['shadow']
    else:
        if not isinstance(tree, dict) or tree.get('format') != EMA_FORMAT:
            raise CheckpointError(f"{ema_path} is not an EMA checkpoint of this project")
        shadow = validation.check_ema_file(tree, ema_path, EMA_FORMAT, params)['shadow']
    with torch.no_grad():
        for name, value in shadow.items():
            params[name].copy_(value)
