"""The challenge's parts without a torch child: environment, hidden paths, the sandbox probe,
the supervisor's limits, taking masks out of the sandbox, and scoring's case coverage."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from bench.challenge import paths, sandbox
from bench.challenge.collect import SandboxFolders
from bench.challenge.predict import prepare_out
from bench.challenge.score import score_challenge
from bench.challenge.supervise import Limits, run_attempt
from bench.errors import BenchError, InputError
from bench.io import write_image
from tests.challenge.conftest import write_record
from tests.factories import TINY_GEOMETRY


def test_the_child_environment_is_rebuilt_from_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_DATASET", "/data/labels")
    monkeypatch.setenv("nnUNet_raw", "/data/raw")
    env = sandbox.minimal_env(tmp_path)
    assert "/data" not in json.dumps(env)
    assert env["HOME"].startswith(str(tmp_path)) and env["TMPDIR"].startswith(str(tmp_path))


def test_the_dataset_root_of_the_images_is_hidden_with_them(challenge_dataset, tmp_path):
    needed = paths.needed_paths(tmp_path / "sub", tmp_path / "model", tmp_path / "box")
    hidden = paths.hidden_paths(challenge_dataset.root / "images", [], needed)
    assert hidden == [challenge_dataset.root]  # images lie inside it: one cover for both


def test_hiding_a_folder_that_holds_the_model_is_refused(challenge_dataset, tmp_path):
    needed = paths.needed_paths(tmp_path, challenge_dataset.root / "labels", tmp_path / "box")
    with pytest.raises(BenchError, match="holds the model"):
        paths.hidden_paths(challenge_dataset.root / "images", [], needed)


def test_the_probe_falls_back_and_says_why(tmp_path, monkeypatch):
    plan = sandbox.SandboxPlan(tmp_path, (), (), ())
    monkeypatch.setattr(sandbox, "full_prefix", lambda plan: ["false"])
    assert sandbox.probe(plan).level in ("network", "none")
    assert any("filesystem isolation unavailable" in n for n in sandbox.probe(plan).notes)
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    fallback = sandbox.probe(plan)
    assert fallback.level == "none" and not fallback.network
    assert any(n.startswith("network isolation unavailable") for n in fallback.notes)


def test_odd_folder_names_survive_the_setup_script(isolation, tmp_path):
    if isolation.level != "full":
        pytest.skip("the full sandbox is unavailable here")
    box = tmp_path / "it's a $(box) `x`"
    secret = tmp_path / "data; rm -rf ~"
    box.mkdir()
    secret.mkdir()
    plan = sandbox.SandboxPlan(box, (secret,), (), sandbox.read_only_mounts(box))
    assert sandbox.probe(plan).level == "full"


def _child(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


# A child speaking the protocol: `emit` writes an event, `cases()` yields the handed-over ids,
# `answer` answers a case with the token it was handed over with.
PROTOCOL = """
import json, sys, time
def emit(**e): print(json.dumps(e), flush=True)
spec = json.loads(sys.stdin.readline())
tokens = {}
def cases():
    for line in sys.stdin:
        message = json.loads(line)
        tokens[message["case"]] = message["token"]
        yield message["case"]
def answer(case, event="case_done", **fields):
    emit(event=event, case=case, token=tokens.get(case, "guess"), **fields)
"""


class Feed:
    """Records what the supervisor gave and took."""

    def __init__(self):
        self.given: list[str] = []
        self.taken: list[str] = []

    def give(self, case: str) -> str:
        self.given.append(case)
        return ""

    def take(self, case: str) -> str:
        self.taken.append(case)
        return ""


def _attempt(tmp_path, code: str, limits: Limits, cases=("a", "b"), feed: Feed | None = None):
    feed = feed or Feed()
    return run_attempt(
        _child(PROTOCOL + textwrap.dedent(code)),
        tmp_path,
        sandbox.minimal_env(tmp_path),
        sandbox.limits(None, sandbox.resource.RLIMIT_AS),
        {"spec": True},
        list(cases),
        limits,
        tmp_path / "child.log",
        feed.give,
        feed.take,
    )


def test_a_case_that_runs_over_its_limit_is_killed_and_junk_is_ignored(tmp_path):
    code = """
        print("not json", flush=True); print("x" * 100000, flush=True)
        emit(event="ready", load_s=0.1)
        answer("zz")  # not one of its cases: ignored
        for case in cases():
            emit(event="case_start", case=case)
            if case == "b":
                time.sleep(60)
            answer(case, runner={})
    """
    feed = Feed()
    attempt = _attempt(tmp_path, code, Limits(1.0, 10.0, None), feed=feed)
    assert attempt.stopped == "case" and attempt.current == "b"
    assert attempt.events["a"].status == "done" and "zz" not in attempt.events
    assert feed.given == ["a", "b"] and feed.taken == ["a"]
    assert attempt.exit == "signal SIGKILL" and attempt.wall_s < 8


def test_a_child_that_never_gets_ready_is_stopped_at_start_up(tmp_path):
    attempt = _attempt(tmp_path, "time.sleep(60)", Limits(1.0, 1.0, None))
    assert attempt.stopped == "startup" and not attempt.ready and attempt.wall_s < 8


def test_the_parent_hands_over_one_case_at_a_time_and_times_it(tmp_path):
    code = """
        emit(event="ready", load_s=0.0)
        for case in cases():
            time.sleep(0.5)
            answer(case)
    """
    feed = Feed()
    attempt = _attempt(tmp_path, code, Limits(10.0, 10.0, None), feed=feed)
    assert attempt.finished and feed.given == feed.taken == ["a", "b"]
    assert all(attempt.events[c].latency_s >= 0.5 for c in ("a", "b"))
    assert attempt.exit == "exit code 0"


def test_answers_sent_ahead_of_their_case_or_without_its_token_are_ignored(tmp_path):
    code = """
        emit(event="ready", load_s=0.0)
        for case in cases():
            emit(event="case_done", case=case)  # no token
            emit(event="case_done", case=case, token="0" * 32)  # a guessed one
            time.sleep(0.5)
            answer("a"); answer("b")  # b's answer comes before b is handed over
    """
    attempt = _attempt(tmp_path, code, Limits(10.0, 10.0, None))
    assert attempt.events["a"].latency_s >= 0.5 and attempt.events["b"].latency_s >= 0.5


def _mask(path: Path, values=(0, 1), geometry=TINY_GEOMETRY) -> Path:
    array = np.zeros(geometry.shape_zyx, np.uint8)
    array[1, 2:4, 2:4] = values[1]
    write_image(array, geometry, path)
    return path


def _take(source: Path, target: Path) -> str:
    """Take `source` out of its folder through the descriptors the harness holds."""
    folders = SandboxFolders(source.parent, source.parent)
    try:
        return folders.take(source.name.removesuffix(".nii.gz"), target, TINY_GEOMETRY)
    finally:
        folders.close()


def test_a_good_mask_is_copied(tmp_path):
    source = _mask(tmp_path / "p.nii.gz")
    assert _take(source, tmp_path / "out.nii.gz") == ""
    assert (tmp_path / "out.nii.gz").read_bytes() == source.read_bytes()


def _bomb(path: Path) -> Path:
    data = gzip.decompress(_mask(path).read_bytes())
    path.write_bytes(gzip.compress(data + bytes(1 << 20)))
    return path


def _truncated(path: Path) -> Path:
    data = _mask(path).read_bytes()
    path.write_bytes(data[:-8])  # the header reads, the stream ends early
    return path


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _link(path: Path) -> Path:
    target = _mask(path.with_name("label.nii.gz"))
    path.symlink_to(target)
    return path


def _other_grid(path: Path) -> Path:
    shifted = type(TINY_GEOMETRY)(
        TINY_GEOMETRY.shape_zyx, TINY_GEOMETRY.spacing_xyz, (0.0, 0.0, 9.0), TINY_GEOMETRY.direction
    )
    return _mask(path, geometry=shifted)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_link, "symbolic link"),
        (_fifo, "not a plain file"),
        (_other_grid, "origin"),
        (lambda p: _mask(p, values=(0, 2)), "values must be 0 and 1"),
        (_bomb, "more data"),
        (_truncated, "not a complete gzip"),
        (lambda p: p, "missing"),
    ],
)
def test_a_bad_output_is_refused_with_its_reason(make, reason, tmp_path):
    source = make(tmp_path / "p.nii.gz")
    problem = _take(source, tmp_path / "out.nii.gz")
    assert reason in problem
    assert not (tmp_path / "out.nii.gz").exists()


def test_an_output_folder_with_other_files_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        prepare_out(tmp_path)


def _predictions(dataset, folder: Path, cases: list[str]) -> Path:
    folder.mkdir()
    for case in cases:
        shutil.copyfile(dataset.case(case).labels["B"], folder / f"{case}.nii.gz")
    write_record(folder, [c.id for c in dataset.cases])
    return folder


def test_scoring_refuses_a_missing_case_unless_told_to_score_it_empty(challenge_dataset, tmp_path):
    every = [c.id for c in challenge_dataset.cases]
    folder = _predictions(challenge_dataset, tmp_path / "pred", every[1:])
    with pytest.raises(InputError, match="--missing-as-empty"):
        score_challenge(challenge_dataset, folder, tmp_path / "r.json")
    outcome = score_challenge(challenge_dataset, folder, tmp_path / "r.json", missing_as_empty=True)
    assert outcome.empty_cases == (every[0],) and outcome.results_path.is_file()
