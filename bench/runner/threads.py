"""How many CPU threads torch uses: the profile's (or `bench run --threads`), never guessed.

CPU training is not bitwise reproducible across thread counts (a reduction split two ways
adds in another order), so the count is part of the run's settings and of its results file:
the same command gives the same predictions. A short probe (a 3D convolution, ~0.1 s) may
advise another count in a log line, because which count is faster depends on the moment: on
a 2-core machine shared with other work a small 3D U-Net's training step took 0.4-0.9 s with
two threads and 0.1-0.2 s with one; on an idle machine two threads win.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bench.errors import BenchError
from bench.provenance import available_cores

log = logging.getLogger(__name__)

_best: int | None = None
_advised = False


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
    """The faster of one thread and every core right now, measured on first use and
    remembered; advice only (`advise`), never what a run uses."""
    global _best
    if _best is None:
        cores = available_cores()
        if cores == 1:
            _best = 1
        else:
            one, every = _probe_seconds(1), _probe_seconds(cores)
            _best = cores if every < one else 1
            log.debug(
                "thread probe: %.0f ms with 1, %.0f ms with %d", one * 1e3, every * 1e3, cores
            )
    return _best


def resolved_threads(threads: int | None) -> int:
    """The count a run uses: `threads`, or every core when None (torch's own default)."""
    if threads is not None and threads < 1:
        raise BenchError(f"torch threads must be at least 1, not {threads}")
    return threads or available_cores()


def advise(threads: int | None) -> None:
    """Log once per process when the probe finds the other count faster at the moment."""
    global _advised
    chosen = resolved_threads(threads)
    if _advised or available_cores() == 1:
        return
    _advised = True
    faster = best_thread_count()
    if faster != chosen:
        log.info(
            "torch threads: %d (the run's setting); a probe finds %d faster on this machine "
            "right now: `bench run --threads %d` would be quicker, with other numbers",
            chosen,
            faster,
            faster,
        )


@contextmanager
def cpu_threads(threads: int | None = None) -> Iterator[int]:
    """Run the block with `threads` torch threads (None: every core); then restore."""
    import torch

    previous = torch.get_num_threads()
    chosen = resolved_threads(threads)
    torch.set_num_threads(chosen)
    try:
        yield chosen
    finally:
        torch.set_num_threads(previous)
