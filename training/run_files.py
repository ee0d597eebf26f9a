"""What a training run writes and reads back: options, stats, sample grids, checkpoints."""

import dataclasses
import hashlib
import json
import math
import time
from pathlib import Path

import torch
from torchvision.utils import save_image

from checkpoints import (CheckpointError, ema_checkpoint, generator_checkpoint, safe_load,
                         save_all, validation, DISCRIMINATOR_FORMAT, EMA_FORMAT, GENERATOR_FORMAT)
from checkpoints.builders import DISCRIMINATOR_CLASSES
from inference.rendering import evaluation_settings
from torch_utils.ema import averaged_weights
from utils.files import atomic_write, require_space

CHECKPOINT_FILES = ('generator.pth', 'ema.pth', 'ema2.pth', 'discriminator.pth',
                    'optimizer_G.pth', 'optimizer_D.pth', 'scaler.pth', 'training_state.pth')


def jsonable(value):
    """Curricula have int keys, tuples and inf: make them plain JSON."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def require_checkpoint_space(output_dir, generator, discriminator):
    """Stops the run at its start when the output disk cannot hold the checkpoint files that are certain: the
    generator, its two averages and the discriminator (the optimisers' states come on top, and each save needs
    the room for a whole new set before it replaces the old one)."""
    def tensor_bytes(module):
        return sum(tensor.numel() * tensor.element_size() for tensor in module.state_dict().values())
    require_space(output_dir, 3 * tensor_bytes(generator) + tensor_bytes(discriminator), 'a checkpoint')


def write_options(output_dir, argv, opt, curriculum, process):
    options = {'command_line': argv, 'options': vars(opt), 'world_size': process.world_size,
               'device': str(process.device), 'torch': torch.__version__, 'curriculum': curriculum}
    with atomic_write(Path(output_dir) / 'options.json', 'w') as file:
        file.write(json.dumps(jsonable(options), indent=2) + '\n')


# --- sample grids ------------------------------------------------------------------

def save_sample_grids(output_dir, step, generator, ema, fixed_z, settings, sample_size, autocast):
    """The original's five grids: fixed, tilted (+0.5 yaw), both with EMA weights, and random at psi 0.7.

    settings: the step's settings.Settings. Rendering uses the evaluation settings at the mean camera
    (inference.rendering.evaluation_settings) and its own RNG stream, so that writing samples never
    changes training.
    """
    evaluation = evaluation_settings(settings, sample_size)
    rendering, front = evaluation.rendering, evaluation.camera
    tilted = dataclasses.replace(front, h_mean=front.h_mean + 0.5)
    z = fixed_z.to(generator.device)
    random_z = torch.randn(fixed_z.shape, generator=torch.Generator().manual_seed(step)).to(generator.device)

    def render(latent, camera, psi=1):
        with torch.no_grad(), autocast():
            return generator.staged_forward(latent, psi=psi, rendering=rendering, camera=camera)[0]

    devices = [generator.device] if generator.device.type == 'cuda' else []
    with torch.random.fork_rng(devices=devices):
        grids = {'fixed': render(z, front), 'tilted': render(z, tilted)}
        with averaged_weights(ema, generator):
            grids.update(fixed_ema=render(z, front), tilted_ema=render(z, tilted),
                         random=render(random_z, front, psi=0.7))
    nrow = int(math.sqrt(len(fixed_z)))
    for name, images in grids.items():
        with atomic_write(Path(output_dir) / f'{step}_{name}.png') as file:  # a full disk: DiskFullError, no half PNG
            save_image(images.float(), file, format='png', nrow=nrow, normalize=True, value_range=(-1, 1))


def save_final_grids(output_dir, step, *args):
    """save_sample_grids at the run's last step, unless that step's grids were written already."""
    if not (Path(output_dir) / f'{step}_fixed.png').exists():
        save_sample_grids(output_dir, step, *args)


# --- checkpoints -------------------------------------------------------------------

def save_checkpoint(folder, state):
    """Writes the full training state (a dict of the live objects) into folder, atomically per file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    step, epoch = state['step'], state['epoch']
    save_all(folder, {
        'generator.pth': generator_checkpoint(state['generator'], step, epoch, state['curriculum_name'],
                                              state['curriculum'], state['options']),
        'ema.pth': ema_checkpoint(state['ema'], step),
        'ema2.pth': ema_checkpoint(state['ema2'], step),
        'discriminator.pth': {'format': DISCRIMINATOR_FORMAT, 'version': 1, 'step': step, 'epoch': epoch,
                              'discriminator': type(state['discriminator']).__name__,
                              'state_dict': state['discriminator'].state_dict()},
        'optimizer_G.pth': state['optimizer_G'].state_dict(),
        'optimizer_D.pth': state['optimizer_D'].state_dict(),
        'scaler.pth': state['scaler'].state_dict(),
        'training_state.pth': {'step': step, 'epoch': epoch, 'epoch_position': state['epoch_position'],
                               'rng_states': state['rng_states'], 'saved_at': time.time(),
                               'rank_param_digests': state['rank_param_digests']},
    })


def param_digest(*modules):
    """SHA-256 of all parameters: equal on every rank when distributed training is in sync."""
    digest = hashlib.sha256()
    for module in modules:
        for tensor in module.state_dict().values():
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def snapshot_folder(output_dir, step):
    return Path(output_dir) / 'snapshots' / f"{time.strftime('%Y%m%d-%H%M%S')}_step{step:07d}"


def load_checkpoint(folder):
    """Reads a run folder written by save_checkpoint; every file must be there and agree on the step."""
    folder = Path(folder)
    if not (folder / 'generator.pth').is_file():
        raise CheckpointError(f"--load_dir {folder}: no checkpoint there (expected generator.pth and "
                              f"{', '.join(CHECKPOINT_FILES[1:])})")
    missing = [name for name in CHECKPOINT_FILES if not (folder / name).is_file()]
    if missing:
        raise CheckpointError(f"--load_dir {folder}: incomplete checkpoint, missing {', '.join(missing)}")
    files = {}
    for name in sorted(CHECKPOINT_FILES, key=lambda name: (folder / name).stat().st_size):  # small ones first
        files[name] = check_run_file(name, safe_load(folder / name, name), folder / name)
    steps = {name: files[name]['step'] for name in ('generator.pth', 'ema.pth', 'ema2.pth', 'discriminator.pth',
                                                    'training_state.pth')}
    if len(set(steps.values())) != 1:
        raise CheckpointError(f"--load_dir {folder}: files are from different steps {steps}; "
                              f"use a snapshot folder instead")
    return files


def check_run_file(name, value, path):
    """The checked content of one file of a run folder (see checkpoints/validation.py)."""
    if name == 'generator.pth':
        return validation.check_generator_file(value, path, GENERATOR_FORMAT)
    if name in ('ema.pth', 'ema2.pth'):
        return validation.check_ema_file(value, path, EMA_FORMAT)
    if name == 'discriminator.pth':
        return validation.check_discriminator_file(value, path, DISCRIMINATOR_FORMAT, DISCRIMINATOR_CLASSES)
    if name == 'scaler.pth':
        return validation.check_scaler_file(value, path)
    if name == 'training_state.pth':
        return validation.check_training_state_file(value, path)
    return validation.check_dict(value, path, 'optimizer state')  # checked against the optimizer on restore


def restore_checkpoint(files, folder, generator, discriminator, ema, ema2, optimizer_G, optimizer_D, scaler):
    """Loads a checked run folder (load_checkpoint) into freshly built training objects."""
    folder = Path(folder)
    validation.load_module_state(generator, files['generator.pth']['state_dict'], folder / 'generator.pth')
    validation.load_module_state(discriminator, files['discriminator.pth']['state_dict'],
                                 folder / 'discriminator.pth')
    for name, average in (('ema.pth', ema), ('ema2.pth', ema2)):
        validation.check_matches(files[name]['shadow'], average.shadow, folder / name, 'EMA shadow')
        average.load_state_dict(files[name])
    for name, optimizer in (('optimizer_G.pth', optimizer_G), ('optimizer_D.pth', optimizer_D)):
        optimizer.load_state_dict(validation.check_optimizer_file(files[name], folder / name, optimizer))
    if files['scaler.pth']:  # empty when saved without fp16: keep the fresh scaler
        scaler.load_state_dict(files['scaler.pth'])
