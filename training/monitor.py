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


class Deadline:
    """--max_minutes: the time by which the whole process must have ended, counted from its start.

    The loop stops early enough to write the final grids and checkpoint in time: it keeps in
    reserve what the last save took (a first guess until one is timed) and one step more.
    """

    FIRST_GUESS_SECONDS = 15.0  # SYNTHETIC_CPU at 32x32 on 2 cores: about 7 s for the final grids and checkpoint
    TEARDOWN_SECONDS = 3.0  # closing the loader and the process

    def __init__(self, started, minutes):
        self.end = started + minutes * 60 if minutes is not None else float('inf')
        self.save_seconds = self.FIRST_GUESS_SECONDS
        self.last_step = time.time()
        self.step_seconds = 0.0

    @contextlib.contextmanager
    def timing_save(self):
        start = time.time()
        try:
            yield
        finally:
            self.save_seconds = time.time() - start
            self.last_step = time.time()  # a save is not a step

    def reached(self):
        """Called once a step: True when another step could not end in time to save."""
        now = time.time()
        self.step_seconds, self.last_step = now - self.last_step, now
        if self.end == float('inf'):
            return False
        return now + self.step_seconds + 1.25 * self.save_seconds + self.TEARDOWN_SECONDS >= self.end


def peak_memory_gib(device):
    """Peak memory of this process so far: CUDA allocations on a GPU, else the peak resident set."""
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2**30
    if resource is None:
        return float('nan')
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
