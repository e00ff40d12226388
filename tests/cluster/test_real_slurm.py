"""`bench run --executor slurm` on a real one-node Slurm (`start_slurm.sh`; skipped where it
cannot start): the smoke profile of nnunet2d gives the local executor's results file, a unit
killed with scancel is run again, a rerun submits nothing, a request the node cannot hold is
refused in one line, and SIGTERM cancels the run's jobs.

Threads are pinned to one on both sides: a Slurm job is bound to the one CPU it asks for
(task/affinity), the local units inherit this process's affinity, and the harness gives torch
as many threads as it has CPUs; CPU training is not bitwise reproducible across thread counts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import bench.cli
from bench.executors import ExecutorSettings
from bench.results import load_results

ROOT = Path(__file__).resolve().parents[2]
METHOD = "nnunet2d"  # the cheapest real method: ~30 s a fold on the smoke profile
ONE_CPU = ["--cpus-per-unit", "1", "--mem-gb", "2", "--gpus-per-unit", "0", "--time-min", "10"]


@pytest.fixture
def slurm_env(slurm_cluster, monkeypatch):
    """This process, the `bench run`s it starts and their jobs all use the test cluster and
    import this checkout."""
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)
    monkeypatch.setattr(ExecutorSettings, "poll_interval_s", 1.0)  # not 10 s: a test
    yield slurm_cluster
    assert queue_drained(), f"a test left jobs in the queue: {squeue()}"


def squeue(*options: str) -> list[str]:
    done = subprocess.run(
        ["squeue", "--noheader", "--format=%i|%j|%T", *options],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return done.stdout.split()


def queue_drained(timeout_s: float = 30.0) -> bool:
    """Whether the queue empties within `timeout_s`: a job whose result is in stays listed
    while it completes, and a cancelled one for KillWait (2 s)."""
    deadline = time.monotonic() + timeout_s
    while squeue():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def bench_run(dataset, workdir: Path, *argv: str) -> int:
    common = ["--dataset", str(dataset.root), "--profile", "smoke", "--quiet", "--device", "cpu"]
    return bench.cli.main(["run", "--method", METHOD, *common, "--workdir", str(workdir), *argv])


@contextlib.contextmanager
def one_cpu() -> Iterator[None]:
    """This process and the processes it starts run on one CPU."""
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(previous)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)


@contextlib.contextmanager
def cancel_first_running(job_name: str) -> Iterator[list[str]]:
    """scancel the first job called `job_name` once it runs (while its Python starts, before
    any training); yields the list that receives its id."""
    cancelled: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set() and not cancelled:
            for line in squeue("--states=RUNNING"):
                job_id, name, _ = line.split("|")
                if name == job_name:
                    subprocess.run(["scancel", job_id], check=True, timeout=30)
                    cancelled.append(job_id)
            stop.wait(0.3)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield cancelled
    finally:
        stop.set()
        thread.join(timeout=60)


def test_slurm_run_equals_local_run_after_a_scancel_and_a_rerun_submits_nothing(
    slurm_env, head_dataset, tmp_path, caplog, capfd
):
    caplog.set_level(logging.INFO)
    with one_cpu():
        local = ["--executor", "local", "--max-parallel", "2", "--time-min", "10"]
        assert bench_run(head_dataset, tmp_path / "local", *local) == 0

    with cancel_first_running(f"bench-{METHOD}-fold0") as cancelled:
        assert bench_run(head_dataset, tmp_path / "slurm", "--executor", "slurm", *ONE_CPU) == 0
    assert len(cancelled) == 1
    assert (
        f"{METHOD} fold 0 failed (left the queue without a result (state CANCELLED)" in caplog.text
    )
    assert f"{METHOD} fold 0: submitted job" in caplog.text.split("resubmitting")[1]
    said = caplog.text + capfd.readouterr().err
    assert "sacct" not in said and "accounting storage is disabled" not in said  # no noise

    stem = f"{METHOD}__{head_dataset.name}__smoke.json"
    on_local = load_results(tmp_path / "local" / "results" / stem)
    on_slurm = load_results(tmp_path / "slurm" / "results" / stem)
    assert len(on_slurm.prediction_sha256) == 8
    assert on_slurm.prediction_sha256 == on_local.prediction_sha256
    assert on_slurm.per_case.to_frame().equals(on_local.per_case.to_frame())

    caplog.clear()
    assert bench_run(head_dataset, tmp_path / "slurm", "--executor", "slurm", *ONE_CPU) == 0
    assert "submitted job" not in caplog.text
    assert caplog.text.count("finished in an earlier run; not submitted") == 2
    again = load_results(tmp_path / "slurm" / "results" / stem)
    assert again.prediction_sha256 == on_slurm.prediction_sha256


def test_a_request_the_node_cannot_hold_is_refused_in_one_line(
    slurm_env, head_dataset, tmp_path, capsys
):
    too_many_cpus = ["--cpus-per-unit", "64", "--mem-gb", "1", "--gpus-per-unit", "0"]
    assert bench_run(head_dataset, tmp_path / "w", "--executor", "slurm", *too_many_cpus) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "can never start: pending with reason PartitionConfig" in errors[0]
    offer = f"partition debug has 1 node(s), the largest with {os.cpu_count()} CPU(s)"
    assert f"a unit asks for 64 CPU(s), 1 GB, 0 GPU(s) and {offer}" in errors[0]

    assert bench_run(head_dataset, tmp_path / "w", "--executor", "slurm") == 2  # 1 GPU a unit
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: could not submit {METHOD} fold 0: sbatch: Invalid generic resource (gres) "
        "specification (--gpus-per-unit 1: pass --gpus-per-unit 0 on a CPU partition)"
    ]


def test_sigterm_cancels_the_runs_jobs(slurm_env, head_dataset, tmp_path):
    argv = [
        *("run", "--method", METHOD, "--profile", "smoke", "--dataset", str(head_dataset.root)),
        *("--workdir", str(tmp_path / "w"), "--quiet", "--executor", "slurm", *ONE_CPU),
    ]
    code = "import sys, bench.cli; sys.exit(bench.cli.main(sys.argv[1:]))"
    child = subprocess.Popen([sys.executable, "-c", code, *argv], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while len(squeue()) < 2 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert len(squeue()) == 2
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 130, err
    assert "cancelling 2 unfinished job(s)" in err
    assert err.strip().splitlines()[-1] == "interrupted: finished outputs are kept; rerun to resume"
    assert queue_drained(timeout_s=10)
