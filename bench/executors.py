"""Run `bench run`'s units, each (method, fold) in its own process, through submitit.

`local` starts the units as processes on this machine (`submitit.LocalExecutor`), `slurm`
submits them as Slurm jobs (`submitit.AutoExecutor(cluster="slurm")`). A unit's process gets
plain arguments only and calls `bench.pipeline.run_method(..., folds=[fold])`; everything it
makes (the fold's marker, its predictions) lands in the shared work directory, so the resume
rules of an in-process run still hold and the parent scores once, after every unit finished.

A failed unit (an exception, or a process that died without a result) is resubmitted up to
`retries` times; the others run on regardless, and the caller gets every unit's outcome with
the failed ones' log path and last error line. submitit's files (the pickled call, its result,
stdout and stderr) live in `<workdir>/executor/<method>/<profile>/fold_<k>/`.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.errors import BenchError

if TYPE_CHECKING:  # `bench --help` imports this module for its defaults: keep it light
    from bench.pipeline import FoldResult, Unit

log = logging.getLogger(__name__)

EXECUTORS: tuple[str, ...] = ("inline", "local", "slurm")
LOCAL_PARALLEL = 2  # units at once on this machine unless --max-parallel says otherwise


@dataclass(frozen=True)
class ExecutorSettings:
    """How units are dispatched; the Slurm fields are ignored by the local executor."""

    kind: str = "local"
    partition: str | None = None  # None: the cluster's default partition
    gpus_per_unit: int = 1
    cpus_per_unit: int = 8  # nnU-Net's data augmentation wants several cores per GPU
    time_min: int = 24 * 60  # also the local executor's timeout (submitit's default is 2 min)
    mem_gb: int = 32
    max_parallel: int | None = None  # None: every unit at once (slurm), LOCAL_PARALLEL (local)
    retries: int = 1
    poll_s: float | None = None  # None: 1 s locally, 10 s on Slurm

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS[1:]:
            raise BenchError(f"unknown executor {self.kind!r} (choose local or slurm)")
        for name in ("gpus_per_unit", "cpus_per_unit", "time_min", "mem_gb", "retries"):
            minimum = 1 if name in ("time_min", "mem_gb", "cpus_per_unit") else 0
            if getattr(self, name) < minimum:
                raise BenchError(f"--{name.replace('_', '-')} must be at least {minimum}")
        if self.max_parallel is not None and self.max_parallel < 1:
            raise BenchError("--max-parallel must be at least 1")

    @property
    def parallel(self) -> int | None:
        return self.max_parallel or (LOCAL_PARALLEL if self.kind == "local" else None)

    @property
    def poll_interval_s(self) -> float:
        return self.poll_s if self.poll_s is not None else (1.0 if self.kind == "local" else 10.0)


@dataclass(frozen=True)
class UnitOutcome:
    unit: Unit
    attempts: int
    result: FoldResult | None  # None when every attempt failed
    error: str | None  # the last attempt's last error line
    log_path: Path | None  # the last attempt's stderr

    @property
    def failed(self) -> bool:
        return self.result is None


def run_unit(
    method: str,
    dataset_root: str,
    profile: str,
    workdir: str,
    fold: int,
    device: str | None = None,
    entry: str | None = None,
) -> FoldResult:
    """One unit, in the process submitit started; top level and plain arguments, so it pickles.

    `entry` ("module:Class") lets the child find a method that the parent registered at run
    time (the child's registry holds only the built-ins and the submissions).
    """
    from bench.data.dataset import load_dataset
    from bench.errors import MethodFailed
    from bench.pipeline import run_method
    from bench.registry import methods

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    registry = methods()
    if method not in registry and entry:
        registry.register_lazy(method, entry, "registered by the parent process", "parent")
    dataset = load_dataset(dataset_root)
    try:
        result = run_method(
            method, dataset, profile, Path(workdir), [fold], progress=False, device=device
        )
    except MethodFailed as error:  # the unit's report names method and fold already
        raise error.__cause__ or error from None
    return result.folds[0]


def method_entry(name: str) -> str | None:
    """Where a registered method's class lives, as "module:Class", for `run_unit`'s `entry`."""
    from bench.registry import methods

    entry = methods().entry(name)
    if entry.target:
        return entry.target
    return f"{entry.obj.__module__}:{entry.obj.__qualname__}" if entry.obj else None


def unit_folder(workdir: Path, unit: Unit, profile: str) -> Path:
    return Path(workdir) / "executor" / unit.method / profile / f"fold_{unit.fold}"


def run_units(
    units: Sequence[Unit],
    settings: ExecutorSettings,
    dataset_root: Path,
    profile: str,
    workdir: Path,
    device: str | None = None,
    entries: Mapping[str, str | None] | None = None,
) -> list[UnitOutcome]:
    """Run every unit (at most `settings.parallel` at once) and return their outcomes in order.

    Waits for all of them; an interrupt cancels the units still running, whose finished work
    stays in the work directory for the next run.
    """
    if settings.kind == "slurm" and not all(shutil.which(tool) for tool in ("sbatch", "srun")):
        raise BenchError(
            "--executor slurm needs Slurm (sbatch, srun) on PATH; use --executor local"
        )
    entries = entries or {}
    pending = deque(units)
    attempts: Counter[Unit] = Counter()
    running: dict[Unit, Any] = {}
    outcomes: dict[Unit, UnitOutcome] = {}
    try:
        while pending or running:
            while pending and (settings.parallel is None or len(running) < settings.parallel):
                unit = pending.popleft()
                attempts[unit] += 1
                call = (unit.method, str(dataset_root), profile, str(workdir), unit.fold, device)
                executor = make_executor(settings, unit_folder(workdir, unit, profile), unit)
                running[unit] = job = _submit(executor, unit, call, entries.get(unit.method))
                if settings.kind == "local":
                    # A local job writes its result before its process exits: no file system
                    # lag to wait for (submitit waits 15 s for a crashed job's result).
                    job._results_timeout_s = 1
                log.info("%s: submitted job %s (attempt %d)", unit, job.job_id, attempts[unit])
            finished = [unit for unit, job in running.items() if job.done()]
            if not finished:
                time.sleep(settings.poll_interval_s)
            for unit in finished:
                job = running.pop(unit)
                result, error = _collect(job)
                if error is not None and attempts[unit] <= settings.retries:
                    log.warning("%s failed (%s); resubmitting", unit, error)
                    pending.append(unit)
                    continue
                if error is not None:
                    log.error("%s failed (%s); log: %s", unit, error, job.paths.stderr)
                outcomes[unit] = UnitOutcome(
                    unit, attempts[unit], result, error, Path(job.paths.stderr)
                )
    finally:
        for job in running.values():
            job.cancel(check=False)
    return [outcomes[unit] for unit in units]


def make_executor(settings: ExecutorSettings, folder: Path, unit: Unit) -> Any:
    """A submitit executor for one unit, its logs in `folder`."""
    import submitit

    if settings.kind == "local":
        executor = submitit.LocalExecutor(folder=folder)
        # submitit sets CUDA_VISIBLE_DEVICES from gpus_per_node (none: no GPU at all); a local
        # unit should see the GPUs that `bench run` itself sees.
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        setup = f"export CUDA_VISIBLE_DEVICES={shlex.quote(visible)}" if visible is not None else ""
        executor.update_parameters(
            timeout_min=settings.time_min, setup=[setup or "unset CUDA_VISIBLE_DEVICES"]
        )
        return executor
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    parameters: dict[str, Any] = {
        "name": f"bench-{unit.method}-fold{unit.fold}",
        "timeout_min": settings.time_min,
        "gpus_per_node": settings.gpus_per_unit,
        "cpus_per_task": settings.cpus_per_unit,
        "mem_gb": settings.mem_gb,
        "nodes": 1,
        "tasks_per_node": 1,
    }
    if settings.partition:
        parameters["slurm_partition"] = settings.partition
    executor.update_parameters(**parameters)
    return executor


def _submit(executor: Any, unit: Unit, call: tuple, entry: str | None) -> Any:
    """Submit one unit; a refused submission (sbatch: a bad partition...) stops the run."""
    from submitit.core.utils import FailedJobError

    try:
        return executor.submit(run_unit, *call, entry)
    except (OSError, FailedJobError) as error:
        reason = _last_line(str(error)) or type(error).__name__
        raise BenchError(f"could not submit {unit}: {reason}") from error


def _collect(job: Any) -> tuple[FoldResult | None, str | None]:
    """(the unit's result, None) or (None, the error's last line)."""
    from submitit.core.utils import FailedJobError, pickle_load

    error = job.exception()
    if error is None:
        return job.result(), None
    if isinstance(error, FailedJobError):
        _, trace = pickle_load(job.paths.result_pickle)  # ("error", the formatted traceback)
        return None, _last_line(trace) or "failed without a message"
    # No result at all: the process died (killed, out of memory, timed out, os._exit).
    last = _last_line(job.stderr() or "")
    return None, f"died without a result (state {job.state})" + (
        f"; last log: {last}" if last else ""
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
