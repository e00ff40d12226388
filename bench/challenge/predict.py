"""`bench challenge predict`: a submission's predictor, run blind on images only.

The parent makes a fresh sandbox folder, starts the child there (`bench.challenge.child`)
inside the strongest sandbox the platform allows (`bench.challenge.sandbox`) and hands it one
case at a time under the limits (`bench.challenge.supervise`): the case's image (and nothing
else of the dataset) goes in, the well-formed `<case>.nii.gz` mask comes out
(`bench.challenge.collect`) before the next case. After a case that hung or crashed the
child, a new child runs the remaining cases. Then the record is written.
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
from bench.challenge.cgroup import ChildGroup, make_child_group
from bench.challenge.child import INPUT_DIR, OUTPUT_DIR, spec
from bench.challenge.collect import SandboxFolders
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
CHILD_MODULE = "bench.challenge.child"


@dataclass(frozen=True)
class ChallengeRun:
    submission: Path
    images: Path
    out: Path
    model: Path | None = None
    fold: int = 0
    profile: str = "demo"
    device: str = "cpu"
    threads: int | None = None  # CPU threads for torch; None: the profile's count
    limits: Limits = Limits(DEFAULT_TIME_LIMIT_S_PER_CASE, DEFAULT_STARTUP_S, DEFAULT_MEMORY_GB)
    hide: tuple[Path, ...] = ()
    require_isolation: bool = True


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
    from bench.submissions import check_unique_name, validate_manifest

    manifest = validate_manifest(Path(run.submission))
    if manifest.kind != "adapter":
        raise BenchError(
            f"{run.submission}: kind is {manifest.kind!r}; the challenge runs adapter submissions"
        )
    check_unique_name(manifest)  # its results file would replace another method's
    model = Path(run.model) if run.model else Path(run.submission) / MODEL_SUBFOLDER
    if not model.is_dir():
        raise InputError("is not a model folder (train with `bench run`, pass --model)", file=model)
    get_profile(run.profile)
    cases = image_cases(Path(run.images))
    for folder in run.hide:
        if not Path(folder).is_dir():
            raise InputError("--hide takes a folder (hide the folder that holds it)", file=folder)
    work = Path(tempfile.mkdtemp(prefix="bench-challenge-"))  # private: mode 0700
    folders, group = None, None
    try:
        box = work / "sandbox"
        needed = paths.needed_paths(Path(run.submission), model, work)
        hidden = paths.hidden_paths(Path(run.images), run.hide, needed)
        best_effort, notes = paths.best_effort_paths(hidden, needed)
        folders = _make_sandbox(box)
        plan = sandbox.SandboxPlan(
            box.resolve(), tuple(hidden), tuple(best_effort), sandbox.read_only_mounts(work)
        )
        isolation = sandbox.probe(plan)
        if run.require_isolation and isolation.level != "full":
            raise BenchError(
                f"full isolation is required: {'; '.join(isolation.notes)} "
                "(--allow-weaker-isolation runs it anyway, with the labels exposed)"
            )
        if run.hide and isolation.level != "full":
            raise BenchError(
                f"--hide {run.hide[0]} cannot be honoured: {'; '.join(isolation.notes)}"
            )
        prepare_out(Path(run.out))  # only now: a refused run keeps the last run's outputs
        memory = run.limits.memory_gb
        group, no_group = make_child_group(int(memory * 2**30) if memory else None)
        record = ChallengeRecord(
            submission=manifest.name,
            submission_folder=str(Path(run.submission).resolve()),
            model=str(model.resolve()),
            fold=run.fold,
            profile=run.profile,
            device=run.device,
            limits=_limits_json(run, group, no_group),
            isolation=_isolation_json(isolation, plan, child_env(run, box)),
            cases=[CaseOutcome(case) for case in cases],
            notes=[*isolation.notes, *notes],
        )
        feed = _CaseFeed(folders, cases, Path(run.out))
        _run_attempts(run, record, plan, isolation, box, work, model, manifest.entry, feed, group)
    finally:
        if group is not None:
            group.remove()
        if folders is not None:
            folders.close()
        _remove(work)
    record.save(Path(run.out))
    return record


def _make_sandbox(box: Path) -> SandboxFolders:
    """The sandbox's folders, empty; input and output held open before any child runs."""
    for name in (INPUT_DIR, OUTPUT_DIR, "home", "tmp", "cache"):
        (box / name).mkdir(parents=True)
    return SandboxFolders(box / INPUT_DIR, box / OUTPUT_DIR)


class _CaseFeed:
    """Gives the child one case's image (a copy, never a link) and takes its mask out."""

    def __init__(self, folders: SandboxFolders, cases: dict[str, Path], out: Path):
        self.folders, self.cases, self.out = folders, cases, out

    def give(self, case: str) -> str:
        return self.folders.give(case, self.cases[case])

    def take(self, case: str) -> str:
        from bench.io import read_geometry

        expected = read_geometry(self.cases[case], case)
        return self.folders.take(case, self.out / f"{case}.nii.gz", expected)


def _limits_json(run: ChallengeRun, group: ChildGroup | None, no_group: str) -> dict:
    limits = run.limits
    kind = "RLIMIT_DATA" if run.device.startswith("cuda") else "RLIMIT_AS"
    return {
        "time_limit_s_per_case": limits.time_s_per_case,
        "startup_s": limits.startup_s,
        "timed_by": "the harness: start-up to ready, each case from hand-over to its answer",
        "memory_gb": limits.memory_gb,
        "memory_rlimit": kind if limits.memory_gb else None,
        "memory_whole_submission": group.description if group else no_group,
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
    feed: _CaseFeed,
    group: ChildGroup | None,
) -> None:
    """Children until every case has an outcome; a new one only after one made progress."""
    outcomes = {c.case: c for c in record.cases}
    todo = list(outcomes)
    memory = run.limits.memory_gb
    # CUDA reserves far more address space than it uses, so on a GPU the data segment is capped.
    kind = resource.RLIMIT_DATA if run.device.startswith("cuda") else resource.RLIMIT_AS
    preexec = sandbox.limits(
        int(memory * 2**30) if memory else None, kind, group.join if group else None
    )
    env = child_env(run, box)
    command = sandbox.command_for(isolation, plan, [sys.executable, "-s", "-m", CHILD_MODULE])
    start = spec(
        submission=Path(run.submission).resolve(),
        entry=entry,
        model=model.resolve(),
        fold=run.fold,
        profile=run.profile,
        device=run.device,
        threads=run.threads,
    )
    while todo:
        number = len(record.attempts)
        log_path = work / f"child-{number}.log"
        attempt = run_attempt(
            command,
            box,
            env,
            preexec,
            start,
            todo,
            run.limits,
            log_path,
            feed.give,
            feed.take,
            group,
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
        if event.oom_killed:
            outcome.fail(
                "memory",
                f"the submission's processes together passed the {limits.memory_gb:g} GB limit "
                "during this case: the kernel killed one",
            )
        elif event.status == "done" and not event.taken:
            outcome.status, outcome.runner = "ok", event.runner
        elif event.status == "done" and event.taken == "missing":
            outcome.fail("missing", "no <case>.nii.gz in the output folder")
        elif event.status == "done":
            outcome.fail("malformed", event.taken.removeprefix("malformed: "))
        elif event.status == "not_given":
            outcome.fail("error", event.error)
        elif event.status == "error":
            message = f"{event.error_type}: {event.error}" if event.error else event.error_type
            if is_memory_error(event.error_type, event.error):
                outcome.fail("memory", f"memory limit of {limits.memory_gb:g} GB: {message}")
            else:
                outcome.fail("error", f"the submission raised {message}")
        elif attempt.stopped == "case":
            outcome.fail("timeout", f"took longer than the {limits.time_s_per_case:g} s limit")
        else:
            outcome.fail("crashed", f"the process ended ({attempt.exit}) during this case")
    return bool(attempt.events)


def _not_run(outcome: CaseOutcome, attempt: Attempt, limits: Limits) -> None:
    if attempt.stopped == "startup":
        reason = f"start-up (import and model loading) took longer than {limits.startup_s:g} s"
    elif attempt.startup_error:
        reason = f"the submission failed to start: {attempt.startup_error}"
        if is_memory_error(attempt.startup_error.split(":")[0], attempt.startup_error):
            outcome.fail("memory", f"memory limit of {limits.memory_gb:g} GB: {reason}")
            return
    else:
        reason = f"the process ended ({attempt.exit}) before it was ready"
    outcome.fail("not_run", reason)


def _remove(work: Path) -> None:
    """Delete the workspace, even folders the child left unreadable."""

    root = work.resolve()

    def retry(function, path, _error) -> None:
        try:
            # chmod follows links: only folders that really lie inside the workspace.
            if not Path(path).resolve().is_relative_to(root):
                raise OSError(f"leads outside the workspace: {path}")
            for folder in (Path(path).parent, Path(path)):
                if folder.is_dir() and not folder.is_symlink():
                    folder.chmod(stat.S_IRWXU)
            function(path)
        except OSError as error:
            log.warning("could not delete %s: %s", path, error)

    shutil.rmtree(work, onerror=retry)
