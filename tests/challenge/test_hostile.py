"""Hostile submissions are stopped or thwarted, and each failure is recorded with its reason.

The spy tries every route to the labels it can think of (relative paths, `..`, the
environment, the absolute path, /proc, unmounting the cover), writes outside its folder,
swaps an output for a symlink to a label and phones home; then the honest run's scores are
recomputed to show that nothing it did reached the dataset or another submission's results.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest

from bench.challenge.score import score_challenge
from bench.data.dataset import case_files, compute_content_sha256
from bench.io import read_image
from bench.results import load_results
from tests.challenge.conftest import (
    SPY,
    full_sandbox_here,
    run_challenge,
    some_images,
    weaker_isolation_options,
    write_model,
)

# A child that imports torch and MONAI takes 10-20 s to start on a busy 2-core machine.
slow = pytest.mark.slow


class Listener:
    """A TCP server on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.accepted = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                connection, _ = self.socket.accept()
            except OSError:
                continue
            self.accepted += 1
            connection.close()

    def close(self):
        self.stop.set()
        self.thread.join()
        self.socket.close()


def _sleepers(marker: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                found.append(cmdline.parent.name)
        except OSError:
            continue
    return found


@slow
def test_the_spy_reads_no_label_writes_nothing_outside_and_reaches_no_network(
    full_isolation, challenge_dataset, honest_run, tmp_path, monkeypatch
):
    root = challenge_dataset.root
    before = compute_content_sha256(root, case_files(challenge_dataset))
    # Variables a careless organiser might have set: the child must not see them.
    monkeypatch.setenv("BENCH_DATASET", str(root))
    monkeypatch.setenv("BENCH_MANIFEST", str(root / "dataset.json"))
    monkeypatch.setenv("nnUNet_raw", str(root))
    outside = tmp_path / "outside"
    outside.mkdir()
    listener = Listener()
    config = {"spy": True, "dataset": str(root), "outside": str(outside), "port": listener.port}
    config["symlink_labels"] = True
    try:
        record = run_challenge(
            SPY, root / "images", tmp_path / "out", write_model(tmp_path / "model", **config)
        )
    finally:
        listener.close()
    log = "\n".join(a["stderr_tail"] for a in record.attempts)
    # It tried: every route is in its log, and every one was blocked.
    routes = ["env-names", "relative", "relative known", "dotdot", "absolute manifest"]
    routes += ["absolute label", "proc:", "proc-environ", "umount", "absolute after umount"]
    routes += ["write parent", "write outside", "write label", "write tmp", "network", "internet"]
    for route in routes:
        assert f"SPY {route}" in log, route
    assert "READ" not in log and "WROTE" not in log and "CONNECTED" not in log and "SENT" not in log
    assert "leaked so far: []" in log
    names = log.split("SPY env-names: ")[1].splitlines()[0].split(",")
    assert not [n for n in names if n.startswith(("BENCH", "nnUNet"))]
    # The effects, checked from outside.
    assert listener.accepted == 0
    assert list(outside.iterdir()) == []
    assert not Path("/tmp/bench-spy-pwned.txt").exists()
    assert compute_content_sha256(root, case_files(challenge_dataset)) == before
    # The first case's mask became a symlink to its label while the second case ran: too
    # late, the harness took every mask out as its case was answered.
    assert "SPY symlink: output/" in log
    for case, outcome in {c.case: c for c in record.cases}.items():
        assert outcome.status == "ok", (case, outcome.reason)
        spied = read_image(tmp_path / "out" / f"{case}.nii.gz")[0]
        honest = read_image(honest_run.out / f"{case}.nii.gz")[0]
        np.testing.assert_array_equal(spied, honest)
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.endswith(".gz")) == [
        "challenge_record.json"
    ]
    # The honest submission's scores are unaffected by what ran in between.
    again = score_challenge(challenge_dataset, honest_run.out, tmp_path / "honest_again.json")
    assert (
        load_results(again.results_path)
        .per_case.to_frame()
        .equals(load_results(honest_run.results).per_case.to_frame())
    )


@slow
def test_a_hang_is_stopped_at_the_case_limit(isolation, challenge_dataset, tmp_path):
    images = some_images(challenge_dataset, ["p001", "p002"], tmp_path / "images")
    marker = f"999.{uuid.uuid4().int % 10**9}"  # a detached `sleep` that must not survive
    model = write_model(tmp_path / "model", hang_on=["p002"], escape_marker=marker)
    record = run_challenge(
        SPY, images, tmp_path / "out", model, time_s_per_case=2.5, hide=(challenge_dataset.root,)
    )
    outcomes = {c.case: c for c in record.cases}
    assert outcomes["p001"].status == "ok" and (tmp_path / "out" / "p001.nii.gz").is_file()
    assert outcomes["p002"].status == "timeout" and "2.5 s" in outcomes["p002"].reason
    assert not (tmp_path / "out" / "p002.nii.gz").exists()
    (attempt,) = record.attempts
    assert attempt["stopped_by_limit"] == "case"
    assert 2.5 <= attempt["wall_s"] - attempt["load_s"] < 20
    if isolation.level == "full":  # its PID namespace took the detached process with it
        assert not _sleepers(marker)
    else:
        for pid in _sleepers(marker):
            os.kill(int(pid), 9)


@slow
def test_memory_a_crash_and_a_wrong_shape_fail_their_case_only(
    isolation, challenge_dataset, tmp_path
):
    cases = ["p001", "p002", "p003", "p004"]
    images = some_images(challenge_dataset, cases, tmp_path / "images")
    model = write_model(
        tmp_path / "model", allocate_gb_on={"p001": 8}, bad_shape_on=["p002"], exit_on=["p003"]
    )
    record = run_challenge(
        SPY, images, tmp_path / "out", model, memory_gb=6, hide=(challenge_dataset.root,)
    )
    outcomes = {c.case: c for c in record.cases}
    # 8 GB of untouched address space is refused under the 6 GB RLIMIT_AS; the child lives on.
    assert outcomes["p001"].status == "memory", outcomes["p001"].reason
    assert "6 GB" in outcomes["p001"].reason and "MemoryError" in outcomes["p001"].reason
    assert record.limits["memory_rlimit"] == "RLIMIT_AS"
    assert outcomes["p002"].status == "error" and "shape" in outcomes["p002"].reason
    # os._exit(7) takes the child down: the case is recorded, a new child runs the rest.
    assert outcomes["p003"].status == "crashed" and "exit code 7" in outcomes["p003"].reason
    assert outcomes["p004"].status == "ok" and outcomes["p004"].attempt == 1
    assert len(record.attempts) == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "challenge_record.json",
        "p004.nii.gz",
    ]
    saved = json.loads((tmp_path / "out" / "challenge_record.json").read_text(encoding="utf-8"))
    assert saved["summary"] == {"ok": 1, "memory": 1, "error": 1, "crashed": 1}


def test_a_slow_start_is_stopped_at_the_start_up_limit(isolation, challenge_dataset, tmp_path):
    images = some_images(challenge_dataset, ["p001"], tmp_path / "images")
    model = write_model(tmp_path / "model", load_sleep_s=600)
    record = run_challenge(
        SPY, images, tmp_path / "out", model, startup_s=3, hide=(challenge_dataset.root,)
    )
    (outcome,) = record.cases
    assert outcome.status == "not_run" and "longer than 3 s" in outcome.reason
    assert record.attempts[0]["wall_s"] < 15


@pytest.fixture
def broken_submission(tmp_path) -> Path:
    folder = tmp_path / "challenge_broken"
    folder.mkdir()
    manifest = (SPY / "submission.toml").read_text(encoding="utf-8")
    (folder / "submission.toml").write_text(
        manifest.replace("challenge_spy", "challenge_broken"), encoding="utf-8"
    )
    (folder / "adapter.py").write_text('raise RuntimeError("broken on purpose")\n')
    return folder


def test_a_submission_that_cannot_start_exits_2_with_one_line(
    broken_submission, challenge_dataset, tmp_path, capsys
):
    from bench.cli import main

    images = some_images(challenge_dataset, ["p001", "p002"], tmp_path / "images")
    model = write_model(tmp_path / "model")
    argv = ["challenge", "predict", "--submission", str(broken_submission), "--model", str(model)]
    argv += ["--images", str(images), "--out", str(tmp_path / "out"), "--profile", "smoke"]
    argv += ["--hide", str(challenge_dataset.root)] if full_sandbox_here() else []
    argv += weaker_isolation_options()
    assert main(argv) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "2 of 2 case(s) failed" in errors[0] and "RuntimeError: broken on purpose" in errors[0]
    saved = json.loads((tmp_path / "out" / "challenge_record.json").read_text(encoding="utf-8"))
    assert saved["summary"] == {"not_run": 2}
