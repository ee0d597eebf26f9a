"""Stopping a run cleanly on Ctrl-C: the run saves its checkpoint and grids, then ends."""

import signal
import threading

import torch
import torch.distributed as dist
from tqdm import tqdm

from utils.errors import UserError


class StopRequest:
    """The first Ctrl-C (SIGINT) asks the run to stop after the current step, saving its checkpoint and
    sample grids; a second one stops at once. `with StopRequest() as stop:` ... `stop.agreed(process)`."""

    def __init__(self, announce=True):
        self.requested = False
        self.previous = None
        self.announce = announce  # False in a launcher whose workers announce it themselves

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self.announce:
            tqdm.write("Ctrl-C: stopping after this step and saving a checkpoint "
                       "(Ctrl-C again to quit without saving)")

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def agreed(self, process):
        """True on every rank as soon as any rank was asked to stop (so all save together)."""
        flag = torch.tensor([float(self.requested)], device=process.device)
        if process.distributed:
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())


class TrainingInterrupted(UserError):
    """Raised after the checkpoint of an interrupted run was saved (reported as one line)."""
