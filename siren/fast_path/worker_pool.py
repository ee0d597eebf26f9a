"""Spreads independent chunks of CPU work over single-threaded torch workers.

The fast path works on cache-sized chunks, so each op is small. With torch's
intra-op threads every op forks and joins all threads; when other processes share
the cores, a descheduled thread stalls each join (measured: passes 2x to 20x
slower). Here each worker runs whole chunks with one intra-op thread and takes
the next chunk when done, so there is one join per call and a slow core simply
does fewer chunks. As many workers as torch.get_num_threads().
"""

import os
import queue
import threading

import torch


class _Pool:
    def __init__(self, size):
        self.size = size
        self.pid = os.getpid()
        self.jobs = queue.SimpleQueue()
        main_threads = torch.get_num_threads()
        started = threading.Barrier(size + 1)
        for _ in range(size):
            threading.Thread(target=self._serve, args=(started,), daemon=True).start()
        started.wait()
        # set_num_threads(1) in the workers also changed process-wide defaults.
        torch.set_num_threads(main_threads)

    def _serve(self, started):
        torch.set_num_threads(1)  # this thread's OpenMP and MKL thread counts
        started.wait()
        while True:
            job = self.jobs.get()
            if job is None:
                return
            work, results = job
            try:
                with torch.no_grad():
                    results.put(work())
            except BaseException as error:  # handed to the caller
                results.put(error)

    def run_on_all(self, work):
        """work() once on every worker; returns their results."""
        results = queue.SimpleQueue()
        for _ in range(self.size):
            self.jobs.put((work, results))
        outcomes = [results.get() for _ in range(self.size)]
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return outcomes

    def close(self):
        for _ in range(self.size):
            self.jobs.put(None)


_pool = None
_pool_lock = threading.Lock()


def _get_pool():
    global _pool
    size = torch.get_num_threads()
    with _pool_lock:
        if _pool is None or _pool.size != size or _pool.pid != os.getpid():  # a forked child has no workers
            if _pool is not None and _pool.pid == os.getpid():
                _pool.close()
            _pool = _Pool(size)
        return _pool


def for_each_chunk(chunks, body):
    """Calls body(chunk, state) for every chunk, with no grad, spread over the workers.

    `state` is a dict private to one worker (scratch buffers, partial sums);
    returns the states of the workers that did any chunk.
    """
    if torch.get_num_threads() == 1:
        state = {}
        with torch.no_grad():
            for chunk in chunks:
                body(chunk, state)
        return [state]
    todo = queue.SimpleQueue()
    for chunk in chunks:
        todo.put(chunk)

    def work():
        state = {}
        while True:
            try:
                chunk = todo.get_nowait()
            except queue.Empty:
                return state
            body(chunk, state)

    return [state for state in _get_pool().run_on_all(work) if state]
