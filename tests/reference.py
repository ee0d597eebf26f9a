"""Access to ../shared/fixtures/pigan_reference and its weight formula."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

FIXTURES = Path(os.environ.get('PIGAN_REFERENCE_DIR',
                               Path(__file__).resolve().parents[2] / 'shared' / 'fixtures' / 'pigan_reference'))
OFFICIAL_DIR = FIXTURES / 'official_spatialsiren'

_MASK = (1 << 64) - 1


def splitmix64(x):
    """Vectorised splitmix64 on uint64 numpy arrays (wrapping arithmetic)."""
    x = (x + np.uint64(0x9E3779B97F4A7C15))
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def formula_uniform(k, shape):
    """u in [0, 1) for element i of the k-th parameter, as the fixture README defines."""
    count = int(np.prod(shape)) if len(shape) else 1
    i = np.arange(count, dtype=np.uint64)
    with np.errstate(over='ignore'):
        bits = splitmix64(np.uint64(k) * np.uint64(2 ** 32) + i)
    return ((bits >> np.uint64(11)).astype(np.float64) / 2.0 ** 53).reshape(shape)


def formula_state_dict(param_names_shapes_bounds):
    state = {}
    for k, (name, shape, bound) in enumerate(param_names_shapes_bounds):
        u = formula_uniform(k, tuple(shape))
        state[name] = torch.from_numpy(((2 * u - 1) * bound).astype(np.float32))
    return state


def require(path):
    """path, a file of the fixtures; a test without it is skipped, or fails under CI (where they must be)."""
    if not path.exists():
        if os.environ.get('CI'):
            pytest.fail(f'reference fixtures not found at {path} (set PIGAN_REFERENCE_DIR)')
        pytest.skip(f'reference fixtures not found at {path}')
    return path


def load_reference():
    return torch.load(require(FIXTURES / 'reference_outputs.pt'), weights_only=True)


def close(actual, expected, tol=2e-4):
    """|a - e| <= tol * (1 + |e|) elementwise, the README's tolerance."""
    return bool(torch.all((actual - expected).abs() <= tol * (1 + expected.abs())))


def max_rel(actual, expected):
    return float(((actual - expected).abs() / (1 + expected.abs())).max())
