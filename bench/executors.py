"""Run `bench run`'s units, each (method, fold) in its own process, through submitit.

`local` starts the units as processes on this machine (`submitit.LocalExecutor`), `slurm`
submits them as Slurm jobs (`submitit.AutoExecutor(cluster="slurm")`). A unit's process gets
plain arguments only and calls `bench.pipeline.run_method(..., folds=[fold])`; everything it
makes (the fold's marker, its predictions) lands in the shared work directory, so the resume
rules of an in-process run still hold and the parent scores once, after every unit finished.

A unit whose fold is trained and predicted already is not submitted: its outcome is read here
from the work directory. A failed unit (an exception, or a process that died without a
result) is resubmitted up to `retries` times; the others run on regardless, and the caller
gets every unit's outcome with the failed ones' log path and last error line. No wait lasts
longer than the unit's time limit plus `grace_s`; on Slurm a job's state comes from squeue
(`bench.slurm`), so a job that left the queue without a result fails instead of hanging, and a
request that no node of the partition can hold stops the run. submitit's files (the pickled
call, its result, stdout and stderr) live in `<workdir>/executor/<method>/<profile>/fold_<k>/`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import slurm
from bench.errors import BenchError

if TYPE_CHECKING:  # `bench --help` imports this module for its defaults: keep it light
    from bench.pipeline import FoldResult, Unit
    from bench.slurm import QueuedJob
    from bench.splits import Split

log = logging.getLogger(__name__)

EXECUTORS: tuple[str, ...] = ("inline", "local", "slurm")
LOCAL_PARALLEL = 2  # units at once on this machine unless --max-parallel says otherwise
# A result written on another node can take a while to show on a network file system
# (submitit waits 15 s for it too).
RESULT_LAG_S = 15.0


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
    # Beyond the time limit, before a wait gives up: Slurm's kill delay, a busy controller.
    grace_s: float = 300.0

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

    @property
    def wait_limit_s(self) -> float:
        """The longest a unit may stay queued, or stay running."""
        return self.time_min * 60 + self.grace_s

    @property
    def request(self) -> slurm.Request:
        return slurm.Request(self.cpus_per_unit, self.mem_gb, self.gpus_per_unit)


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
    split: Split,
    device: str | None = None,
    entries: Mapping[str, str | None] | None = None,
) -> list[UnitOutcome]:
    """Run every unit (at most `settings.parallel` at once) and return their outcomes in order.

    Units finished in an earlier run are not submitted. Waits for all the others; an
    interrupt (or a BenchError) cancels the jobs still queued or running, says so, and
    keeps their finished work in the work directory for the next run.
    """
    if settings.kind == "slurm" and not all(shutil.which(tool) for tool in ("sbatch", "srun")):
        raise BenchError(
            "--executor slurm needs Slurm (sbatch, srun) on PATH; use --executor local"
        )
    entries = entries or {}
    outcomes: dict[Unit, UnitOutcome] = {}
    for unit in units:
        call = (unit.method, str(dataset_root), profile, str(workdir), unit.fold, device)
        result = _finished_earlier(unit, split, call, entries.get(unit.method))
        if result is not None:
            outcomes[unit] = UnitOutcome(unit, 0, result, None, None)
    pending = deque(unit for unit in units if unit not in outcomes)
    attempts: Counter[Unit] = Counter()
    running: dict[Unit, Attempt] = {}
    watch = slurm.Watch(settings.request) if settings.kind == "slurm" else None
    try:
        while pending or running:
            while pending and (settings.parallel is None or len(running) < settings.parallel):
                unit = pending.popleft()
                attempts[unit] += 1
                call = (unit.method, str(dataset_root), profile, str(workdir), unit.fold, device)
                executor = make_executor(settings, unit_folder(workdir, unit, profile), unit)
                job = _submit(executor, unit, call, entries.get(unit.method), settings)
                phase = "queued" if settings.kind == "slurm" else "running"
                running[unit] = Attempt(job, settings.wait_limit_s, time.monotonic(), phase)
                log.info("%s: submitted job %s (attempt %d)", unit, job.job_id, attempts[unit])
            now = time.monotonic()
            finished = watch.finished(running, now) if watch else _local_finished(running, now)
            if not finished:
                time.sleep(settings.poll_interval_s)
            for unit, error in finished.items():
                attempt = running.pop(unit)
                job = attempt.job
                if error is None:
                    result, error = _collect(job)
                else:
                    if attempt.phase != "gone":  # a wait ran out: make sure the job is gone
                        _cancel([job], settings.kind, say=False)
                    result, error = None, _with_last_log(error, job)
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
        if running:
            _cancel([attempt.job for attempt in running.values()], settings.kind)
    return [outcomes[unit] for unit in units]


def _finished_earlier(
    unit: Unit, split: Split, call: tuple, entry: str | None
) -> FoldResult | None:
    """The result of a unit that an earlier run finished (its fold trained, every validation
    case predicted), read here instead of submitting a job that would find nothing to do."""
    from bench.pipeline import unit_status

    _, _, profile, workdir, _, _ = call
    status = unit_status(unit, split, Path(workdir), profile)
    if not status.trained or status.to_predict:
        return None
    log.info("%s: finished in an earlier run; not submitted", unit)
    return run_unit(*call, entry)  # checks the fold's marker, reads its records


@dataclass
class Attempt:
    """One submission of a unit and the wait for it: queued, running, or gone (left the queue
    without a result); each wait has a limit, after which the attempt fails."""

    job: Any
    limit_s: float
    since: float  # when the current wait began
    phase: str = "queued"
    state: str = "submitted"  # what Slurm said last, for messages

    def observe(
        self, listed: QueuedJob | None, now: float, final_state: Callable[[str], str | None]
    ) -> str | None:
        """Take squeue's line for the job (None: no longer listed); returns `overdue`.
        `final_state(job_id)` names the state of a job that left without squeue saying how."""
        if listed is not None and not listed.final:
            phase = "queued" if listed.state == "PENDING" else "running"
            if phase != self.phase:
                self.phase, self.since = phase, now
            self.state = listed.state + (f", {listed.reason}" if phase == "queued" else "")
        elif self.phase != "gone":
            self.phase, self.since = "gone", now
            if listed is not None:
                self.state = listed.state
            else:
                self.state = final_state(self.job.job_id) or f"last seen {self.state}"
        return self.overdue(now)

    def overdue(self, now: float) -> str | None:
        """The error once the current wait has lasted longer than its limit, else None."""
        limit = RESULT_LAG_S if self.phase == "gone" else self.limit_s
        if now - self.since <= limit:
            return None
        if self.phase == "gone":
            return f"left the queue without a result (state {self.state})"
        still = "still queued" if self.phase == "queued" else "still running"
        return (
            f"{still} after {(now - self.since) / 60:.1f} min, beyond its time limit plus grace "
            f"({self.limit_s / 60:.1f} min; state {self.state}); cancelled"
        )


def _local_finished(running: Mapping[Unit, Attempt], now: float) -> dict[Unit, str | None]:
    """As `bench.slurm.Watch.finished`, for processes on this machine."""
    finished: dict[Unit, str | None] = {}
    for unit, attempt in running.items():
        if attempt.job.done():
            finished[unit] = None
        elif error := attempt.overdue(now):
            finished[unit] = error
    return finished


def _cancel(jobs: Sequence[Any], kind: str, say: bool = True) -> None:
    """Cancel jobs and say so; a second Ctrl-C or SIGTERM waits until it is done. On Slurm,
    one scancel for all of them, its complaints about jobs that just ended kept quiet."""
    with _signals_held():
        if say:
            ids = ", ".join(job.job_id for job in jobs)
            log.warning("cancelling %d unfinished job(s): %s", len(jobs), ids)
        if kind == "slurm":
            command = ["scancel", *(job.job_id for job in jobs)]
            subprocess.run(command, capture_output=True, timeout=60, check=False)
        else:
            for job in jobs:
                job.cancel(check=False)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    signals = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


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


def _submit(
    executor: Any, unit: Unit, call: tuple, entry: str | None, settings: ExecutorSettings
) -> Any:
    """Submit one unit; a refused submission (sbatch: a bad partition...) stops the run with
    every line sbatch gave, whatever their order, and a hint where one helps."""
    from submitit.core.utils import FailedJobError

    try:
        # submitit prints a refusing sbatch's stderr as well: the error below says it once
        with contextlib.redirect_stderr(io.StringIO()):
            return executor.submit(run_unit, *call, entry)
    except (OSError, FailedJobError) as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reasons = [line.removeprefix("sbatch: error: ") for line in lines]
        reason = "; ".join(dict.fromkeys(reasons)) or type(error).__name__
        if lines and lines[0].startswith("sbatch:"):
            reason = f"sbatch: {reason}"
        raise BenchError(f"could not submit {unit}: {reason}{_hint(reason, settings)}") from error


def _hint(reason: str, settings: ExecutorSettings) -> str:
    if "generic resource" in reason and settings.gpus_per_unit:
        asked = f"--gpus-per-unit {settings.gpus_per_unit}"
        return f" ({asked}: pass --gpus-per-unit 0 on a CPU partition)"
    if "node configuration is not available" in reason or "can not be satisfied" in reason:
        try:
            offer = slurm.offer(settings.partition)
        except slurm.SlurmUnavailable:
            return f" (a unit asks for {settings.request})"
        return f" (a unit asks for {settings.request} and {offer})"
    return ""


def _collect(job: Any) -> tuple[FoldResult | None, str | None]:
    """(the unit's result, None) or (None, the error's last line), once its job is over.

    Reads submitit's result file itself: submitit's own accessors ask sacct about a job
    without one, which on a cluster without accounting never answers.
    """
    from submitit.core.utils import pickle_load

    if job.paths.result_pickle.exists():
        outcome, value = pickle_load(job.paths.result_pickle)  # ("error", the traceback)
        if outcome == "success":
            return value, None
        return None, _last_line(value) or "failed without a message"
    # Only a local job gets here (a Slurm job's verdict waits for its result file): the
    # process died without one (killed, out of memory, timed out, os._exit).
    return None, _with_last_log(f"died without a result (state {job.state})", job)


def _with_last_log(error: str, job: Any) -> str:
    last = _last_line(job.stderr() or "")
    return error + (f"; last log: {last}" if last else "")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
