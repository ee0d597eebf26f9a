"""Speed and memory figures for the training log."""

import contextlib
import time

import torch

try:
    import resource
except ImportError:  # not on Windows
    resource = None


class StepTimer:
    """Mean seconds per training step between laps, data loading included; time spent
    in paused() (sampling, saving, evaluation) is left out."""

    def __init__(self, step):
        self.start, self.start_step, self.excluded = time.perf_counter(), step, 0.0

    @contextlib.contextmanager
    def paused(self):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.excluded += time.perf_counter() - start

    def lap(self, step):
        now = time.perf_counter()
        seconds = (now - self.start - self.excluded) / max(1, step - self.start_step)
        self.start, self.start_step, self.excluded = now, step, 0.0
        return seconds


def peak_memory_gib(device):
    """Peak memory of this process so far: CUDA allocations on a GPU, else the peak resident set."""
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2**30
    if resource is None:
        return float('nan')
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
