"""Stopping a run cleanly on Ctrl-C, and FID's readiness checked at start-up."""

import signal
import threading

import torch
import torch.distributed as dist
from tqdm import tqdm

from training.distributed import gather_objects


class StopRequest:
    """The first Ctrl-C (SIGINT) asks the run to stop after the current step, saving its checkpoint and
    sample grids; a second one stops at once. `with StopRequest() as stop:` ... `stop.agreed(info)`."""

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

    def agreed(self, info):
        """True on every rank as soon as any rank was asked to stop (so all save together)."""
        flag = torch.tensor([float(self.requested)], device=info.device)
        if info.distributed:
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())


class TrainingInterrupted(Exception):
    """Raised after the checkpoint of an interrupted run was saved (reported as one line)."""


def fid_available(info, opt):
    """Whether --eval_freq can compute FIDs, checked once before training so a run never dies hours in.

    A --inception_weights file that is missing or unreadable stops the run now.
    Without it, weights that can be neither found in torch.hub's cache nor
    downloaded turn FID off for this run, after a warning that says how to fix it.
    """
    if opt.eval_freq <= 0:
        return False
    from metrics import InceptionWeightsError
    from torch_utils.cli import one_line
    problem = fatal = None
    if info.is_main:
        try:
            import fid_evaluation  # noqa: F401 -- its own imports must work too
            from metrics.inception import build_fid_inception
            build_fid_inception(opt.inception_weights)
        except InceptionWeightsError as error:
            problem, fatal = one_line(error), bool(opt.inception_weights)
        except ImportError as error:
            problem = f"FID evaluation is not available ({error})."
    problem, fatal = gather_objects((problem, fatal), info)[0]
    if fatal:
        raise InceptionWeightsError(f"--inception_weights: {problem}")
    if problem:
        if info.is_main:
            tqdm.write(f"warning: no FID during this run: {problem} Training goes on without --eval_freq; "
                       f"compute FIDs of its snapshots later with eval_metrics.py, or pass --eval_freq 0 "
                       f"to silence this warning.")
        return False
    return True
