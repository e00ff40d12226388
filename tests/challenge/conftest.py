"""Fixtures of the challenge tests: the tiny dataset, model folders, one honest run.

The honest run is session-scoped: it is the reference every hostile run is compared with
(its masks, and its scores after the hostile runs have had their go at the dataset).
"""

from __future__ import annotations

import functools
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.challenge import sandbox
from bench.challenge.predict import ChallengeRun, predict
from bench.challenge.record import RECORD_FORMAT, ChallengeRecord
from bench.challenge.supervise import Limits
from bench.cli import main
from bench.data.dataset import Dataset
from tests.factories import write_tiny_dataset

SUBMISSIONS = Path(__file__).parent / "submissions"
HONEST = SUBMISSIONS / "challenge_honest"
SPY = SUBMISSIONS / "challenge_spy"
HU = 30.0  # the "trained" threshold of both submissions
# Start-up imports torch and MONAI: tens of seconds on a busy 2-core machine.
STARTUP_S = 120.0


def write_model(folder: Path, **config) -> Path:
    """A model folder as the submissions' `fit` would leave it (fold 0)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fold_0.json").write_text(json.dumps({"hu": HU, **config}), encoding="utf-8")
    return folder


def some_images(dataset: Dataset, cases: list[str], folder: Path) -> Path:
    """A folder holding the images of `cases` only (outside the dataset: hide it explicitly)."""
    folder.mkdir(parents=True)
    for case in cases:
        (folder / f"{case}.nii.gz").write_bytes(dataset.case(case).image.read_bytes())
    return folder


def run_challenge(
    submission: Path,
    images: Path,
    out: Path,
    model: Path,
    time_s_per_case: float = 30.0,
    memory_gb: float | None = 16.0,
    startup_s: float = STARTUP_S,
    hide: tuple[Path, ...] = (),
) -> ChallengeRecord:
    return predict(
        ChallengeRun(
            submission=submission,
            images=images,
            out=out,
            model=model,
            profile="smoke",
            threads=1,  # no thread-count probe: start-up stays short
            limits=Limits(time_s_per_case, startup_s, memory_gb),
            # Where the full sandbox is unavailable nothing can be hidden: the tests that
            # need it say so by taking the `full_isolation` fixture.
            hide=hide if full_sandbox_here() else (),
            require_isolation=False,
        )
    )


def write_record(folder: Path, case_ids: list[str], **changes) -> Path:
    """A challenge record as `predict` writes it (full isolation), with `changes` applied."""
    record = {
        "format": RECORD_FORMAT,
        "submission": "given_b",
        "profile": "smoke",
        "isolation": {"level": "full"},
        "cases": [{"case": c, "status": "ok", "latency_s": 1.0} for c in case_ids],
        "attempts": [],
        **changes,
    }
    path = folder / "challenge_record.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def challenge_dataset(tmp_path_factory) -> Dataset:
    return write_tiny_dataset(tmp_path_factory.mktemp("challenge") / "tiny")


@functools.cache
def probe_here() -> sandbox.Isolation:
    with tempfile.TemporaryDirectory() as folder:
        box = Path(folder).resolve()
        plan = sandbox.SandboxPlan(box, (), (), sandbox.read_only_mounts(box))
        return sandbox.probe(plan)


def full_sandbox_here() -> bool:
    return probe_here().level == "full"


def weaker_isolation_options() -> list[str]:
    """The CLI option a test run needs where the full sandbox is unavailable."""
    return [] if full_sandbox_here() else ["--allow-weaker-isolation"]


@pytest.fixture(scope="session")
def isolation() -> sandbox.Isolation:
    return probe_here()


@pytest.fixture
def full_isolation(isolation) -> sandbox.Isolation:
    if isolation.level != "full":
        pytest.skip(f"the full sandbox is unavailable here: {'; '.join(isolation.notes)}")
    return isolation


@dataclass(frozen=True)
class HonestRun:
    out: Path
    results: Path
    record: dict
    model: Path


@pytest.fixture(scope="session")
def honest_run(challenge_dataset, tmp_path_factory) -> HonestRun:
    """`bench challenge predict` then `score` through the CLI, on every image of the dataset."""
    root = tmp_path_factory.mktemp("honest")
    model = write_model(root / "model")
    out, results = root / "out", root / "results.json"
    common = ["--profile", "smoke", "--threads", "1", "--startup-s", str(STARTUP_S)]
    common += weaker_isolation_options()
    predict_argv = ["challenge", "predict", "--submission", str(HONEST), "--model", str(model)]
    images = str(challenge_dataset.root / "images")
    assert main([*predict_argv, "--images", images, "--out", str(out), *common]) == 0
    score_argv = ["challenge", "score", "--dataset", str(challenge_dataset.root)]
    score_argv += weaker_isolation_options()
    assert main([*score_argv, "--predictions", str(out), "--out", str(results)]) == 0
    record = json.loads((out / "challenge_record.json").read_text(encoding="utf-8"))
    return HonestRun(out, results, record, model)
