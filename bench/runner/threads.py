"""How many CPU threads torch should use: measured once per process, not assumed.

On a 2-core machine shared with other work, torch's default (one thread per core) can be
several times slower than one thread: its OpenMP threads wait for a core that someone else
holds. Measured on such a machine: a small 3D U-Net's training step took 0.4-0.9 s with two
threads and 0.1-0.2 s with one; on an idle machine two threads win. So a short probe (a 3D
convolution, ~0.1 s in all) times both and the faster count is used for the run.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

_best: int | None = None


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _probe_seconds(threads: int, repeats: int = 3) -> float:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    # A generator state of its own: the probe runs at a process's first `cpu_threads`, and
    # drawing from the global one would make a model's initial weights depend on whether
    # another fold or method ran in this process before.
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            layers = []
            for _ in range(4):
                layers += [
                    torch.nn.Conv3d(8, 8, 3, padding=1),
                    torch.nn.InstanceNorm3d(8, affine=True),
                    torch.nn.LeakyReLU(),
                ]
            block = torch.nn.Sequential(*layers)
            x = torch.randn(2, 8, 16, 32, 32)

            def step() -> None:
                block.zero_grad(set_to_none=True)
                block(x).sum().backward()

            step()  # warm-up: kernel selection, thread pool start
            best = float("inf")
            for _ in range(repeats):
                started = time.perf_counter()
                step()
                best = min(best, time.perf_counter() - started)
            return best
    finally:
        torch.set_num_threads(previous)


def best_thread_count() -> int:
    """The faster of one thread and every core, measured on first use and remembered."""
    global _best
    if _best is None:
        cores = available_cores()
        if cores == 1:
            _best = 1
        else:
            one, every = _probe_seconds(1), _probe_seconds(cores)
            _best = cores if every < one else 1
            log.info(
                "torch threads: %d (probe %.0f ms with 1, %.0f ms with %d)",
                _best,
                one * 1e3,
                every * 1e3,
                cores,
            )
    return _best


@contextmanager
def cpu_threads(threads: int | None = None) -> Iterator[int]:
    """Run the block with `threads` torch threads (None: the measured best); then restore."""
    import torch

    previous = torch.get_num_threads()
    chosen = threads or best_thread_count()
    torch.set_num_threads(chosen)
    try:
        yield chosen
    finally:
        torch.set_num_threads(previous)
