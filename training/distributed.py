"""Process launch for training: one process per GPU, torchrun, or CPU processes.

- Under torchrun (RANK/WORLD_SIZE/LOCAL_RANK in the environment) each process
  joins the rendezvous torchrun set up.
- Otherwise --nproc workers are spawned (default: one per visible GPU, or one
  on a machine without), rendezvousing on localhost:--port, which is checked
  first whenever there is more than one. --device cpu trains on the CPU (gloo)
  on a GPU machine too; on GPUs each process takes one (NCCL).
"""

import logging
import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from utils.errors import UserError


@dataclass
class Process:
    """This process of the training job: its rank, its device, and the job's size."""
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self):
        return self.rank == 0

    @property
    def distributed(self):
        return self.world_size > 1


class LaunchError(UserError):
    pass


class WorkerError(UserError):
    """A UserError (bad input) in a spawned worker, as its one-line message."""



def port_is_free(port, host='localhost'):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, int(port)))
        except OSError:
            return False
    return True


def launched_by_torchrun():
    return 'RANK' in os.environ and 'WORLD_SIZE' in os.environ


def launch_plan(nproc, device, n_gpus):
    """(processes to spawn, device type) for --nproc (None: default) and --device (None: a GPU if visible).

    The same rule with and without GPUs: --nproc, when given, is the process count; by
    default it is one process per visible GPU, or one on the CPU.
    """
    device = device or ('cuda' if n_gpus > 0 else 'cpu')
    if device == 'cuda' and n_gpus == 0:
        raise LaunchError("--device cuda, but no GPU is visible (check CUDA_VISIBLE_DEVICES); "
                          "use --device cpu to train on the CPU")
    processes = nproc if nproc is not None else (n_gpus if device == 'cuda' else 1)
    if processes < 1:
        raise LaunchError(f"--nproc {nproc}: needs at least one process")
    if device == 'cuda' and processes > n_gpus:
        raise LaunchError(f"--nproc {processes} needs one GPU per process, but {n_gpus} "
                          f"{'is' if n_gpus == 1 else 'are'} visible; use --nproc {n_gpus} or --device cpu")
    return processes, device


def launch(worker, opt):
    """Runs worker(process, opt) in every process of the job.

    A UserError (bad input) raised in a spawned worker reaches this process as a WorkerError with its
    one-line message, even when another worker failed first because of it (a rank waiting in a collective for
    rank 0, which stopped on a full disk); any other exception keeps its traceback.
    """
    n_gpus = torch.cuda.device_count()
    device = getattr(opt, 'device', None)
    if launched_by_torchrun():  # torchrun chose the process count (--nproc_per_node)
        local_rank = int(os.environ.get('LOCAL_RANK', 0))
        _, device = launch_plan(1, device, n_gpus)
        if device == 'cuda' and local_rank >= n_gpus:
            raise LaunchError(f"torchrun's local rank {local_rank} has no GPU of its own ({n_gpus} visible); "
                              f"use --nproc_per_node {n_gpus} or --device cpu")
        _run(int(os.environ['RANK']), local_rank, int(os.environ['WORLD_SIZE']), worker, opt, device,
             init_method='env://')
        return
    world_size, device = launch_plan(getattr(opt, 'nproc', None), device, n_gpus)
    if world_size == 1:
        _run(0, 0, 1, worker, opt, device, init_method=None)
        return
    if not port_is_free(opt.port):
        raise LaunchError(f"port {opt.port} is in use (another training run?); pass --port with a free port")
    from training.stopping import StopRequest
    # When one worker fails, stopping the others is expected: no warning lines about it, neither from
    # mp.spawn nor from c10d's store in the workers (TORCH_CPP_LOG_LEVEL=INFO shows them again).
    logging.getLogger('torch.multiprocessing.spawn').setLevel(logging.ERROR)
    os.environ.setdefault('TORCH_CPP_LOG_LEVEL', 'ERROR')
    user_errors = mp.get_context('spawn').SimpleQueue()  # (rank, one line) of each worker's UserError; no disk
    try:
        with StopRequest(announce=False):  # Ctrl-C: the workers save and end; this process waits for them
            mp.spawn(_spawned, args=(world_size, worker, opt, device, user_errors), nprocs=world_size, join=True)
    except (mp.ProcessRaisedException, mp.ProcessExitedException):
        # A user error becomes one line again (the lowest rank's); a real bug keeps the worker's traceback.
        reported = []
        while not user_errors.empty():
            reported.append(user_errors.get())
        if not reported:
            raise
        raise WorkerError(min(reported)[1]) from None


def _spawned(rank, world_size, worker, opt, device_type, user_errors):
    _run(rank, rank, world_size, worker, opt, device_type, init_method=f'tcp://localhost:{opt.port}',
         user_errors=user_errors)


def _run(rank, local_rank, world_size, worker, opt, device_type, init_method, user_errors=None):
    """user_errors: a queue for (rank, one line) of a UserError, put there before the process group is torn
    down: the teardown is what makes the other ranks fail, and mp.spawn may kill this process as soon as they do."""
    if device_type == 'cuda':
        torch.cuda.set_device(local_rank)
        device = torch.device('cuda', local_rank)
    else:
        device = torch.device('cpu')
    if world_size > 1:
        backend = 'nccl' if device.type == 'cuda' else 'gloo'
        dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world_size)
    try:
        worker(Process(rank, local_rank, world_size, device), opt)
    except UserError as error:
        if user_errors is not None:
            from utils.cli import one_line
            user_errors.put((rank, one_line(error)))
        raise
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def all_finite(value, process):
    """True on every rank iff the scalar is finite on every rank."""
    flag = torch.tensor([float(torch.isfinite(value).all())], device=process.device)
    if process.distributed:
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def any_rank(flag, process):
    """True on every rank iff flag is true on some rank (so all ranks stop at the same step)."""
    if not process.distributed:
        return bool(flag)
    value = torch.tensor([float(flag)], device=process.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def gather_objects(obj, process):
    """List of obj from every rank (a one-element list without distribution)."""
    if not process.distributed:
        return [obj]
    gathered = [None] * process.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier(process):
    if process.distributed:
        dist.barrier()
