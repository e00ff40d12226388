"""Contributed methods: make one from the template, and check that one works before review.

`check_submission` reads the manifest (every field a reviewer needs), then runs the adapter in
a fresh Python process (`python -m bench.submissions`): a crash, a bad import or a stray
`sys.exit` in contributed code cannot take the harness down, and the report names the stage
that failed (import, construct, fit, predict, score) in one line. The run is the smoke profile
on a tiny synthetic dataset (`bench.check_dataset`), fold 0 only.
"""

from __future__ import annotations

import importlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.builtin_methods import BUILTIN_METHODS
from bench.errors import BenchError, InputError
from bench.registry import (
    SUBMISSION_MANIFEST,
    SubmissionManifest,
    check_method_class,
    discover_submissions,
    read_submission_manifest,
    submissions_root,
)

log = logging.getLogger(__name__)

PACKAGE_ROOT = submissions_root()  # the repository's `submissions` package
TEMPLATE = PACKAGE_ROOT / "_template"
CHECK_TIMEOUT_S = 600
STAGES = ("import", "construct", "fit", "predict", "score")
# Template values a contributor must replace: a reviewer cannot reach "you@example.org".
PLACEHOLDER_FIELDS = ("authors", "contact", "description")


def validate_manifest(folder: Path) -> SubmissionManifest:
    """The manifest, checked as the registry checks it and with the template's placeholders
    replaced; one InputError otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("is not a submission folder", file=folder)
    manifest = read_submission_manifest(folder)
    if folder.resolve() != TEMPLATE:
        template = read_submission_manifest(TEMPLATE)
        unchanged = [
            key for key in PLACEHOLDER_FIELDS if getattr(manifest, key) == getattr(template, key)
        ]
        if unchanged:
            raise InputError(
                f"still the template's placeholder: {', '.join(unchanged)} (fill them in)",
                file=folder / SUBMISSION_MANIFEST,
            )
    return manifest


def check_unique_name(manifest: SubmissionManifest) -> None:
    """Refuse a name that a built-in or another submission has: the registry would refuse
    the clash on every later `bench` command, whichever method it ran."""
    path = manifest.folder / SUBMISSION_MANIFEST
    if manifest.name in BUILTIN_METHODS:
        raise InputError(f"name {manifest.name!r} is a built-in method: choose another", file=path)
    for other in discover_submissions(PACKAGE_ROOT):
        if other.name == manifest.name and other.folder.resolve() != manifest.folder.resolve():
            raise InputError(
                f"name {manifest.name!r} is already used by submissions/{other.folder.name}",
                file=path,
            )


def new_submission(name: str, root: Path = PACKAGE_ROOT) -> Path:
    """Copy the template to `root/name` with `name` filled in."""
    if not name.isidentifier() or name.startswith("_"):
        raise BenchError(
            f"submission name {name!r} must be a Python identifier not starting with _"
        )
    target = Path(root) / name
    if target.exists():
        raise InputError("already exists: choose another name", file=target)
    shutil.copytree(TEMPLATE, target, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = target / SUBMISSION_MANIFEST
    text = manifest.read_text(encoding="utf-8").replace('name = "my_method"', f'name = "{name}"')
    manifest.write_text(text, encoding="utf-8")
    return target


@dataclass(frozen=True)
class CheckReport:
    folder: Path
    name: str
    kind: str
    seconds: float | None = None  # the smoke run's wall time (adapters)

    def summary(self) -> str:
        timing = f" in {self.seconds:.1f} s" if self.seconds is not None else ""
        return f"{self.folder}: ok ({self.kind} submission {self.name!r}{timing})"


def check_submission(folder: Path, timeout_s: int = CHECK_TIMEOUT_S) -> CheckReport:
    """Validate the manifest and, for an adapter, run it on the smoke profile in a subprocess."""
    folder = Path(folder).resolve()
    manifest = validate_manifest(folder)
    check_unique_name(manifest)
    if manifest.kind == "predictions":
        from bench.submission_score import check_plain_files

        predictions = folder / manifest.entry
        if not predictions.is_dir():
            raise InputError(
                f"entry {manifest.entry!r} is not a folder of predictions", file=folder
            )
        check_plain_files(folder, predictions)
        return CheckReport(folder, manifest.name, manifest.kind)
    with tempfile.TemporaryDirectory(prefix="bench-check-") as scratch:
        report = Path(scratch) / "report.json"
        command = [sys.executable, "-m", "bench.submissions", str(folder), scratch, str(report)]
        log = Path(tempfile.gettempdir()) / f"bench-check-{manifest.name}.log"
        try:
            done = subprocess.run(
                command, timeout=timeout_s, capture_output=True, text=True, check=False
            )
        except subprocess.TimeoutExpired as expired:
            _write_log(log, expired.stdout, expired.stderr, None)
            raise BenchError(
                f"{folder}: the smoke run took longer than {timeout_s} s (log: {log})"
            ) from None
        outcome = json.loads(report.read_text(encoding="utf-8")) if report.is_file() else None
    if outcome is None or outcome["error"]:
        # What the adapter printed and logged, and the traceback, are kept for the user.
        _write_log(log, done.stdout, done.stderr, outcome and outcome.get("traceback"))
        if outcome is None:
            raise BenchError(
                f"{folder}: the check process died before reporting (a crash?) (log: {log})"
            )
        raise BenchError(f"{folder}: {outcome['stage']} failed: {outcome['error']} (log: {log})")
    return CheckReport(folder, manifest.name, manifest.kind, outcome["seconds"])


def _write_log(path: Path, stdout, stderr, trace: str | None) -> None:
    def text(value) -> str:
        return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")

    parts = [f"--- stdout ---\n{text(stdout)}", f"--- stderr ---\n{text(stderr)}"]
    if trace:
        parts.append(f"--- traceback ---\n{trace}")
    path.write_text("\n".join(parts), encoding="utf-8")


def import_adapter(folder: Path, entry: str) -> type:
    """The adapter class named by `entry`, imported as the registry would."""
    module, attr = entry.split(":")
    folder = Path(folder).resolve()
    if folder.parent == PACKAGE_ROOT:
        name = f"submissions.{folder.name}.{module}"
    else:
        sys.path.insert(0, str(folder.parent))
        name = f"{folder.name}.{module}"
    return getattr(importlib.import_module(name), attr)


def run_smoke(folder: Path, scratch: Path) -> dict:
    """Import, construct, fit fold 0 and predict and score it; stop at the first failure."""
    import time

    stage, started = "import", time.perf_counter()
    try:
        manifest = validate_manifest(folder)
        cls = check_method_class(manifest.name, import_adapter(folder, manifest.entry))
        stage = "construct"
        adapter = cls()
        stage = "fit"
        _fit_predict_score(adapter, scratch)
    except _StageError as error:
        return _failure(error.stage, error.error)
    except Exception as error:  # contributed code may raise anything: report it, in one line
        return _failure(stage, error)
    return {"stage": "done", "error": None, "seconds": time.perf_counter() - started}


def _failure(stage: str, error: BaseException) -> dict:
    import traceback

    trace = "".join(traceback.format_exception(error))
    return {"stage": stage, "error": _one_line(error), "seconds": None, "traceback": trace}


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, BenchError):
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class _StageError(Exception):
    """An error raised by contributed code during `stage`."""

    def __init__(self, stage: str, error: BaseException):
        super().__init__(str(error))
        self.stage, self.error = stage, error


def _fit_predict_score(adapter, scratch: Path) -> float:
    import time

    from bench.check_dataset import write_check_dataset
    from bench.evaluate import score_study
    from bench.pipeline import fold_cases
    from bench.profiles import get_profile
    from bench.runner import CaseInput, InferenceSettings, predict_cases
    from bench.runner.threads import cpu_threads
    from bench.splits import load_split

    started = time.perf_counter()
    dataset = write_check_dataset(scratch / "data")
    profile = get_profile("smoke")
    cases = fold_cases(dataset, load_split(dataset), 0, scratch / "cache")
    workdir = scratch / "model"
    workdir.mkdir()
    with cpu_threads(profile.threads):  # as `bench run` trains: the harness owns threads
        predictor = _stage("fit", adapter.fit, cases, 0, workdir, profile)
    out = scratch / "predictions"
    settings = InferenceSettings.from_profile(profile, device="cpu")
    inputs = [CaseInput(c.id, c.image) for c in cases.val]
    _stage("predict", predict_cases, predictor, inputs, out, settings, scratch / "cache")
    _stage(
        "score", score_study, dataset, {"submission": out}, None, 1, cases=[c.id for c in cases.val]
    )
    return time.perf_counter() - started


def _stage(stage: str, function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except Exception as error:
        raise _StageError(stage, error) from error


def main(argv: list[str]) -> int:
    """`python -m bench.submissions FOLDER SCRATCH REPORT`: the check's subprocess."""
    logging.basicConfig(level=logging.INFO)  # the adapter's own log lines go to the check's log
    folder, scratch, report = (Path(a) for a in argv)
    outcome = run_smoke(folder, scratch)
    report.write_text(json.dumps(outcome), encoding="utf-8")
    return 0 if outcome["error"] is None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
