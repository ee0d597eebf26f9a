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

from pathlib import Path

import torch

from utils.errors import UserError
from utils.files import atomic_writes

from .inspection import STORAGE_TYPES, ForeignGlobal, InspectionError, inspect_checkpoint

GENERATOR_FORMAT = 'pigan/generator'
EMA_FORMAT = 'pigan/ema'
DISCRIMINATOR_FORMAT = 'pigan/discriminator'


class CheckpointError(UserError):
    """A checkpoint is missing, corrupt, or not what was expected."""


def atomic_save(obj, path):
    """torch.save to path via a temporary file in the same folder and an atomic rename."""
    save_all(Path(path).parent, {Path(path).name: obj})


def save_all(folder, files):
    """Writes {file name: object} into folder: every file first to a temporary name, then all renamed."""
    with atomic_writes([Path(folder) / name for name in files]) as opened:
        for obj, file in zip(files.values(), opened):
            torch.save(obj, file)


# Globals the pickles of this project's files name (besides torch's storage classes).
TORCH_GLOBALS = frozenset({'collections OrderedDict', 'torch._utils _rebuild_tensor_v2',
                           'torch._utils _rebuild_parameter', 'torch device'}
                          | {f'torch {name}' for name in STORAGE_TYPES})


class ForeignPickleError(CheckpointError):
    """The file's pickle names a class or function outside those allowed; nothing in it was run."""

    def __init__(self, message, name):
        super().__init__(message)
        self.name = name


def safe_load(path, what='checkpoint', extra_globals=(), stand_ins=None):
    """The object a checkpoint file holds, loaded without running code and within bounded memory.

    The file is inspected first (checkpoints/inspection.py): its archive, pickle
    and storage sizes must be sane and its pickle may name only torch's tensor
    rebuilding globals and extra_globals ('module name'). stand_ins maps such
    extra names to the classes torch's weights_only unpickler builds in their
    place. Any problem raises CheckpointError (ForeignPickleError for a foreign
    global), one message naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} not found: {path}")
    try:
        inspect_checkpoint(path, TORCH_GLOBALS | set(extra_globals))
    except ForeignGlobal as error:
        raise ForeignPickleError(f"refusing to load {path}: it is neither a checkpoint of this project nor of the "
                                 f"original pi-GAN release: {error}, which is not one of the pi-GAN/torch "
                                 f"classes such checkpoints hold. Nothing in it was run.", error.name) from None
    except InspectionError as error:
        raise CheckpointError(f"refusing to load {path}: {error}") from None
    except OSError as error:
        raise CheckpointError(f"cannot read {what} {path}: {error.strerror or error}") from None
    allowed = [(stub, name) for name, stub in (stand_ins or {}).items()]
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # noqa: BLE001 -- any failure inside torch.load means a bad file
        raise CheckpointError(f"refusing to load {path}: it is damaged, truncated or not a checkpoint "
                              f"({load_error_summary(error)})") from None


def load_error_summary(error):
    """The first line of torch.load's error, without its advice to load with weights_only=False."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    useful = [line for line in lines if 'weights_only' not in line and 'WeightsUnpickler' not in line]
    text = (useful or [''])[0][:200]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def generator_checkpoint(generator, step, epoch, curriculum_name, curriculum, options=None):
    return {'format': GENERATOR_FORMAT, 'version': 1, 'state_dict': generator.state_dict(),
            'step': step, 'epoch': epoch, 'curriculum_name': curriculum_name,
            'curriculum': curriculum, 'options': options or {}}


def ema_checkpoint(ema, step):
    return {'format': EMA_FORMAT, 'version': 1, 'step': step, **ema.state_dict()}
