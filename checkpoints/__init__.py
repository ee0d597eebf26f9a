"""Checkpoints: the file format (format.py), the networks a curriculum names
(builders.py), the original release's pickles (official.py) and loading a
generator for inference (loading.py)."""

from .builders import build_discriminator, build_generator, resolve_curriculum  # noqa: F401
from .format import (DISCRIMINATOR_FORMAT, EMA_FORMAT, GENERATOR_FORMAT, CheckpointError, atomic_save,  # noqa: F401
                     ema_checkpoint, generator_checkpoint,
                     safe_load, save_all)
from .loading import apply_ema, load_generator  # noqa: F401
