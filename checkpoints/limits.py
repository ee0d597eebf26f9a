"""Sane bounds for what a checkpoint may declare, checked before anything is allocated.

Real pi-GAN checkpoints are far inside these: the original CelebA generator is
~8 MB with a 2.3 kB pickle of ~4,400 opcodes; the largest curriculum uses a
SIREN 256 wide, 24+24 samples per ray and 256 x 256 images.
"""

import math

from curriculums import KEYS, ConfigError, check_run_only_keys

MAX_FILE_BYTES = 4 << 30           # one checkpoint file
MAX_RECORDS = 10_000               # entries in its zip archive
MAX_PICKLE_BYTES = 64 << 20        # its data.pkl
MAX_PICKLE_OPS = 300_000           # opcodes in data.pkl (the original generator has ~4,400)
MAX_PICKLE_DEPTH = 1_000           # nested MARKs, and objects on the unpickler's stack
MAX_MEMO = 200_000                 # memo entries (BINPUT/LONG_BINPUT)
MAX_INFLATION = 20                 # declared size / compressed size of a compressed zip record
MAX_NESTING = 64                   # containers inside containers in a loaded checkpoint
MAX_PLAIN_ITEMS = 100_000          # values in a checkpoint's curriculum or options (a curriculum has ~100)
MAX_MODULE_DEPTH = 16              # sub-modules inside sub-modules in an original checkpoint

# Architecture and batch values a curriculum may hold: (smallest, largest).
ARCHITECTURE_RANGES = {
    'hidden_dim': (1, 4096),
    'latent_dim': (1, 4096),
    'num_steps': (1, 1024),
    'img_size': (1, 2048),
    'batch_size': (1, 8192),
    'batch_split': (1, 8192),
    'output_dim': (1, 64),
}


MAX_DENSITY_SCALE = 1e6


def check_architecture(curriculum, source):
    """ConfigError naming the key and source if a (stage's) architecture value is of the wrong type or range."""
    stages = [('', curriculum)] + [(f'stage {key}: ', stage) for key, stage in curriculum.items()
                                     if isinstance(key, int) and isinstance(stage, dict)]
    scale = curriculum['density_scale'] if 'density_scale' in curriculum else KEYS['density_scale'].default
    if not (is_finite_number(scale) and 0 < scale <= MAX_DENSITY_SCALE):
        raise ConfigError(f"{source}: density_scale must be a positive number up to {MAX_DENSITY_SCALE:g}, "
                          f"not {short_repr(scale)}")
    check_run_only_keys(curriculum, source)
    for where, values in stages:
        for key, (low, high) in ARCHITECTURE_RANGES.items():
            if key not in values or values[key] is None:
                continue
            value = values[key]
            if type(value) is not int:  # bool and float are refused too: the networks need a count
                raise ConfigError(f"{source}: {where}{key} must be a whole number, not {type(value).__name__} "
                                  f"{short_repr(value)}")
            if not low <= value <= high:
                raise ConfigError(f"{source}: {where}{key}={value} is outside the sane range {low}..{high}")


def short_repr(value, limit=60):
    """repr of a value from a file, cut to limit characters (it may be huge or deeply nested)."""
    try:
        text = repr(value) if isinstance(value, (str, int, float, bool, type(None))) else f'<{type(value).__name__}>'
    except (ValueError, RecursionError):  # ints with more digits than Python will print
        text = f'<{type(value).__name__}>'
    return text if len(text) <= limit else text[:limit] + '...'


def is_finite_number(value):
    return type(value) in (int, float) and math.isfinite(value)
