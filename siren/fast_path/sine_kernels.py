"""Fused bias + sine and sine/cosine steps of the CPU fast path.

The loops in sine_kernels.c are compiled with the system C compiler on first use
(well under a second) and called through ctypes, which releases the GIL, so the
worker threads of worker_pool.py run them side by side. Without a compiler, or
for tensors the loops don't take (not contiguous float32 on the CPU), the same
steps run as torch ops (the *_torch_ functions, checked against the loops in the tests).
"""

import ctypes
import os
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name('sine_kernels.c')
COMPILE_FLAGS = (['-O3', '-march=native'], ['-O3'])  # the second if the compiler rejects -march=native

_lock = threading.Lock()
_library = None  # the loaded library; False once building failed


def _build():
    compiler = os.environ.get('CC') or shutil.which('cc') or shutil.which('gcc') or shutil.which('clang')
    if compiler is None:
        return False
    folder = tempfile.mkdtemp(prefix='pigan_sine_kernels_')
    target = os.path.join(folder, 'sine_kernels.so')
    try:
        for flags in COMPILE_FLAGS:
            command = [compiler, *flags, '-shared', '-fPIC', str(SOURCE), '-o', target, '-lm']
            if subprocess.run(command, capture_output=True).returncode == 0:
                library = ctypes.CDLL(target)
                break
        else:
            return False
    except OSError:
        return False
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # the loaded library stays mapped
    pointer, count = ctypes.c_void_p, ctypes.c_int64
    library.add_bias_sin.argtypes = [pointer, pointer, pointer, count, count, count]
    library.sin_and_mul_cos.argtypes = [pointer, pointer, pointer, count]
    return library


def library():
    """The compiled loops, or None where they can't be used."""
    global _library
    if _library is None:
        with _lock:
            if _library is None:
                _library = _build()
                if not _library:
                    warnings.warn("could not build siren/fast_path/sine_kernels.c (no C compiler?); "
                                  "the SIREN fast path uses torch ops instead, ~10% slower")
    return _library or None


def _takes(*tensors):
    return all(t.dtype == torch.float32 and t.device.type == 'cpu' and t.is_contiguous() for t in tensors)


def add_bias_sin_(z, bias, out, rows_per_bias):
    """z += bias, row i of z taking row i // rows_per_bias of bias; out = sin(z).

    z, out [rows, cols]; bias [rows / rows_per_bias, cols]. Returns out.
    """
    rows, cols = z.shape
    lib = library()
    if lib is None or not _takes(z, bias, out):
        return add_bias_sin_torch_(z, bias, out, rows_per_bias)
    lib.add_bias_sin(z.data_ptr(), out.data_ptr(), bias.data_ptr(), rows, cols, rows_per_bias)
    return out


def add_bias_sin_torch_(z, bias, out, rows_per_bias):
    """add_bias_sin_ as torch ops."""
    z.view(-1, rows_per_bias, z.shape[1]).add_(bias.reshape(-1, 1, z.shape[1]))
    return torch.sin(z, out=out)


def sin_and_mul_cos_(z, sin_out, grad):
    """sin_out = sin(z); grad *= cos(z). Returns sin_out."""
    lib = library()
    if lib is None or not _takes(z, sin_out, grad):
        return sin_and_mul_cos_torch_(z, sin_out, grad)
    lib.sin_and_mul_cos(z.data_ptr(), sin_out.data_ptr(), grad.data_ptr(), z.numel())
    return sin_out


def sin_and_mul_cos_torch_(z, sin_out, grad):
    """sin_and_mul_cos_ as torch ops."""
    grad.mul_(torch.cos(z))
    return torch.sin(z, out=sin_out)
