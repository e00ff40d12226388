"""`bench challenge predict`: a submission's predictor, run blind on images only.

The parent copies the images (and nothing else of the dataset) into a fresh sandbox folder,
starts the child there (`bench.challenge.child`) inside the strongest sandbox the platform
allows (`bench.challenge.sandbox`), follows it under the limits (`bench.challenge.supervise`),
restarts it for the remaining cases after a case that hung or crashed it, then takes only
well-formed `<case>.nii.gz` masks out (`bench.challenge.collect`) and writes the record.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.challenge import paths, sandbox
from bench.challenge.child import INPUT_DIR, OUTPUT_DIR, write_spec
from bench.challenge.record import RECORD_NAME, CaseOutcome, ChallengeRecord, is_memory_error
from bench.challenge.supervise import (
    DEFAULT_MEMORY_GB,
    DEFAULT_STARTUP_S,
    DEFAULT_TIME_LIMIT_S_PER_CASE,
    Attempt,
    Limits,
    run_attempt,
)
from bench.errors import BenchError, InputError

log = logging.getLogger(__name__)

MODEL_SUBFOLDER = "model"  # where --model defaults to, inside the submission


@dataclass(frozen=True)
class ChallengeRun:
    submission: Path
    images: Path
    out: Path
    model: Path | None = None
    fold: int = 0
    profile: str = "demo"
    device: str = "cpu"
    threads: int | None = None  # CPU threads for torch; None: the runner measures the best
    limits: Limits = Limits(DEFAULT_TIME_LIMIT_S_PER_CASE, DEFAULT_STARTUP_S, DEFAULT_MEMORY_GB)
    hide: tuple[Path, ...] = ()
    require_isolation: bool = False


def image_cases(images: Path) -> dict[str, Path]:
    """`<case>.nii.gz` files of the images folder, by case id."""
    if not images.is_dir():
        raise InputError("is not a folder of images", file=images)
    found = {
        p.name[: -len(".nii.gz")]: p
        for p in sorted(images.iterdir())
        if p.name.endswith(".nii.gz") and p.is_file()
    }
    if not found:
        raise InputError("holds no <case>.nii.gz images", file=images)
    return found


def prepare_out(out: Path) -> None:
    """An empty folder, or one a previous challenge run wrote (its outputs are replaced)."""
    out.mkdir(parents=True, exist_ok=True)
    entries = list(out.iterdir())
    if entries and not (out / RECORD_NAME).is_file():
        raise InputError(
            "is not empty and holds no challenge record: choose another --out", file=out
        )
    for entry in entries:
        if entry.name == RECORD_NAME or (entry.name.endswith(".nii.gz") and entry.is_file()):
            entry.unlink()


def predict(run: ChallengeRun) -> ChallengeRecord:
    """Run the submission blind over every image; the record says what happened to each case."""
    from bench.profiles import get_profile
    from bench.submissions import validate_manifest

    manifest = validate_manifest(Path(run.submission))
    if manifest.kind != "adapter":
        raise BenchError(
            f"{run.submission}: kind is {manifest.kind!r}; the challenge runs adapter submissions"
        )
    model = Path(run.model) if run.model else Path(run.submission) / MODEL_SUBFOLDER
    if not model.is_dir():
        raise InputError("is not a model folder (train with `bench run`, pass --model)", file=model)
    get_profile(run.profile)
    cases = image_cases(Path(run.images))
    work = Path(tempfile.mkdtemp(prefix="bench-challenge-"))  # private: mode 0700
    try:
        box = work / "sandbox"
        needed = paths.needed_paths(Path(run.submission), model, work)
        hidden = paths.hidden_paths(Path(run.images), run.hide, needed)
        best_effort, notes = paths.best_effort_paths(hidden, needed)
        prepare_out(Path(run.out))
        _fill_sandbox(box, cases)
        plan = sandbox.SandboxPlan(
            box.resolve(), tuple(hidden), tuple(best_effort), sandbox.read_only_mounts(work)
        )
        isolation = sandbox.probe(plan)
        if run.require_isolation and isolation.level != "full":
            raise BenchError(f"full isolation is required: {'; '.join(isolation.notes)}")
        record = ChallengeRecord(
            submission=manifest.name,
            submission_folder=str(Path(run.submission).resolve()),
            model=str(model.resolve()),
            fold=run.fold,
            profile=run.profile,
            device=run.device,
            limits=_limits_json(run),
            isolation=_isolation_json(isolation, plan, child_env(run, box)),
            cases=[CaseOutcome(case) for case in cases],
            notes=[*isolation.notes, *notes],
        )
        _run_attempts(run, record, plan, isolation, box, work, model, manifest.entry)
        _collect(record, box, cases, Path(run.out))
    finally:
        _remove(work)
    record.save(Path(run.out))
    return record


def _fill_sandbox(box: Path, cases: dict[str, Path]) -> None:
    """Copies (never links: the child could write through a hardlink) of the images only."""
    for name in (INPUT_DIR, OUTPUT_DIR, "home", "tmp", "cache"):
        (box / name).mkdir(parents=True)
    for case, image in cases.items():
        shutil.copyfile(image, box / INPUT_DIR / f"{case}.nii.gz")


def _limits_json(run: ChallengeRun) -> dict:
    limits = run.limits
    kind = "RLIMIT_DATA" if run.device.startswith("cuda") else "RLIMIT_AS"
    return {
        "time_limit_s_per_case": limits.time_s_per_case,
        "startup_s": limits.startup_s,
        "overall_s": "startup_s + time_limit_s_per_case x cases in the attempt",
        "memory_gb": limits.memory_gb,
        "memory_rlimit": kind if limits.memory_gb else None,
        "max_file_bytes": sandbox.FILE_SIZE_LIMIT_BYTES,
    }


def child_env(run: ChallengeRun, box: Path) -> dict[str, str]:
    """The minimal environment, plus where the harness's code is (and the GPU choice)."""
    env = sandbox.minimal_env(box.resolve(), {"PYTHONPATH": str(paths.harness_import_root())})
    if run.device.startswith("cuda") and "CUDA_VISIBLE_DEVICES" in os.environ:
        env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    return env


def _isolation_json(
    isolation: sandbox.Isolation, plan: sandbox.SandboxPlan, env: dict[str, str]
) -> dict:
    fs = isolation.filesystem
    return {
        "level": isolation.level,
        "network": "off (network namespace)" if isolation.network else "not isolated",
        "hidden": [str(p) for p in plan.hidden] if fs else [],
        "covered_where_possible": [str(p) for p in plan.best_effort] if fs else [],
        "read_only_filesystem": fs,
        "processes": "own PID namespace and /proc" if fs else "own process group",
        "user": "nobody in a nested user namespace" if fs else "the organiser's user",
        "environment": sorted(env),
    }


def _run_attempts(
    run: ChallengeRun,
    record: ChallengeRecord,
    plan: sandbox.SandboxPlan,
    isolation: sandbox.Isolation,
    box: Path,
    work: Path,
    model: Path,
    entry: str,
) -> None:
    """Children until every case has an outcome; a new one only after one made progress."""
    outcomes = {c.case: c for c in record.cases}
    todo = list(outcomes)
    memory = run.limits.memory_gb
    # CUDA reserves far more address space than it uses, so on a GPU the data segment is capped.
    kind = resource.RLIMIT_DATA if run.device.startswith("cuda") else resource.RLIMIT_AS
    preexec = sandbox.limits(int(memory * 2**30) if memory else None, kind)
    env = child_env(run, box)
    child = [sys.executable, "-s", "-m", "bench.challenge.child", "spec.json"]
    command = sandbox.command_for(isolation, plan, child)
    while todo:
        number = len(record.attempts)
        write_spec(
            box,
            submission=Path(run.submission).resolve(),
            entry=entry,
            model=model.resolve(),
            fold=run.fold,
            profile=run.profile,
            device=run.device,
            threads=run.threads,
            cases=todo,
        )
        attempt = run_attempt(
            command, box, env, preexec, todo, run.limits, work / f"child-{number}.log"
        )
        record.attempts.append(attempt.to_json())
        for what, index in dict.fromkeys(attempt.sandbox_notes):
            record.notes.append(sandbox.describe_note(plan, what, index))
        started = _settle(attempt, outcomes, run.limits, number)
        todo = [c for c in todo if c not in attempt.events]
        if todo and not started:
            for case in todo:
                _not_run(outcomes[case], attempt, run.limits)
            break
        if todo:
            log.warning("restarting the submission for %d remaining case(s)", len(todo))


def _settle(attempt: Attempt, outcomes: dict[str, CaseOutcome], limits: Limits, n: int) -> bool:
    """Outcomes of the cases the attempt started; True if it started any."""
    for case, event in attempt.events.items():
        outcome = outcomes[case]
        outcome.attempt, outcome.latency_s = n, event.latency_s
        if event.status == "done":
            outcome.status, outcome.runner = "ok", event.runner
        elif event.status == "error":
            message = f"{event.error_type}: {event.error}" if event.error else event.error_type
            if is_memory_error(event.error_type, event.error):
                outcome.fail("memory", f"memory limit of {limits.memory_gb:g} GB: {message}")
            else:
                outcome.fail("error", f"the submission raised {message}")
        elif attempt.stopped == "case":
            outcome.fail("timeout", f"took longer than the {limits.time_s_per_case:g} s limit")
        elif attempt.stopped:
            total = limits.overall_s(len(attempt.cases))
            outcome.fail("timeout", f"the run passed its overall limit of {total:g} s")
        else:
            outcome.fail("crashed", f"the process ended ({attempt.exit}) during this case")
    return bool(attempt.events)


def _not_run(outcome: CaseOutcome, attempt: Attempt, limits: Limits) -> None:
    if attempt.stopped == "startup":
        reason = f"start-up (import and model loading) took longer than {limits.startup_s:g} s"
    elif attempt.stopped == "overall":
        reason = f"the run passed its overall limit of {limits.overall_s(len(attempt.cases)):g} s"
    elif attempt.startup_error:
        reason = f"the submission failed to start: {attempt.startup_error}"
        if is_memory_error(attempt.startup_error.split(":")[0], attempt.startup_error):
            outcome.fail("memory", f"memory limit of {limits.memory_gb:g} GB: {reason}")
            return
    elif attempt.finished:
        outcome.fail("missing", "the submission's process skipped this case")
        return
    else:
        reason = f"the process ended ({attempt.exit}) before it was ready"
    outcome.fail("not_run", reason)


def _collect(record: ChallengeRecord, box: Path, cases: dict[str, Path], out: Path) -> None:
    from bench.challenge.collect import take_mask
    from bench.io import read_geometry

    for outcome in record.cases:
        if outcome.status != "ok":
            continue
        source = box / OUTPUT_DIR / f"{outcome.case}.nii.gz"
        expected = read_geometry(cases[outcome.case], outcome.case)
        problem = take_mask(source, out / f"{outcome.case}.nii.gz", expected, outcome.case)
        if problem == "missing":
            outcome.fail("missing", "no <case>.nii.gz in the output folder")
        elif problem:
            outcome.fail("malformed", problem.removeprefix("malformed: "))


def _remove(work: Path) -> None:
    """Delete the workspace, even folders the child left unreadable."""

    def retry(function, path, _error) -> None:
        try:
            for folder in (Path(path).parent, Path(path)):
                if folder.is_dir() and not folder.is_symlink():
                    folder.chmod(stat.S_IRWXU)
            function(path)
        except OSError as error:
            log.warning("could not delete %s: %s", path, error)

    shutil.rmtree(work, onerror=retry)
