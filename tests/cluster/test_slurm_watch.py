"""`--executor slurm` against a fake Slurm (`tests.cluster.fake_slurm`): jobs that leave the
queue without a result, requests no node can hold, interrupts, reruns and Slurm's messages.
No job runs; the real scheduler is `test_real_slurm.py`'s."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bench.cli
import bench.executors as executors
from bench import slurm
from bench.errors import BenchError
from bench.executors import Attempt, ExecutorSettings, run_units
from bench.pipeline import Unit
from bench.registry import Entry, methods
from bench.splits import load_split, make_split, write_split
from tests.cluster.fake_slurm import FakeSlurm
from tests.factories import write_tiny_dataset
from tests.runner.executor_methods import Dim

ROOT = Path(__file__).resolve().parents[2]
SMALL_NODE = "vm|debug*|2|21694|(null)\n"  # what sinfo -N says of a 2-core, 21 GB node


@pytest.fixture
def dataset(tmp_path):
    data = write_tiny_dataset(tmp_path / "tiny")
    write_split(data, make_split(data, n_folds=2))
    return data


@pytest.fixture(autouse=True)
def _no_result_lag(monkeypatch):
    """A fake job's result is there or not: no file system to wait for."""
    monkeypatch.setattr(executors, "RESULT_LAG_S", 0.0)


def fake(tmp_path, monkeypatch, *plan: str, sinfo: str = SMALL_NODE) -> FakeSlurm:
    return FakeSlurm(tmp_path / "slurm", monkeypatch, list(plan), sinfo)


def run(dataset, tmp_path, units, **settings):
    options = {"kind": "slurm", "poll_s": 0.05, "gpus_per_unit": 0, **settings}
    return run_units(
        units,
        ExecutorSettings(**options),
        dataset.root,
        "smoke",
        tmp_path / "work",
        load_split(dataset),
    )


# --- 1. a job that leaves the queue without a result ------------------------------------------


def test_a_job_that_left_the_queue_without_a_result_is_retried(
    dataset, tmp_path, monkeypatch, caplog
):
    slurm_ = fake(tmp_path, monkeypatch, "vanish:2", "ok")
    [outcome] = run(dataset, tmp_path, [Unit("m", 0)], retries=1)

    assert outcome.result == {"job": "101"} and outcome.attempts == 2
    assert "m fold 0 failed (left the queue without a result (state last seen RUNNING)" in (
        caplog.text
    )
    assert len(slurm_.calls("sbatch")) == 2


def test_a_unit_that_keeps_dying_is_reported_after_its_retries(
    dataset, tmp_path, monkeypatch, capsys
):
    fake(tmp_path, monkeypatch, "cancelled:1")
    monkeypatch.setattr(ExecutorSettings, "poll_interval_s", 0.05)  # not 10 s as on a cluster
    argv = ["--method", "nnunet2d", "--folds", "0", "--executor", "slurm", "--retries", "2"]
    common = ["--dataset", str(dataset.root), "--profile", "smoke", "--quiet"]
    code = bench.cli.main(["run", *common, "--workdir", str(tmp_path / "work"), *argv])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]

    assert code == 2
    assert err[0].startswith(
        "error: unit nnunet2d fold 0 failed after 3 attempt(s): left the queue without a "
        "result (state CANCELLED) (log: "
    )
    assert err[1] == "error: 1 of 1 unit(s) failed; finished work is kept: rerun to resume"


def test_an_error_result_is_read_without_asking_sacct(dataset, tmp_path, monkeypatch):
    slurm_ = fake(tmp_path, monkeypatch, "raise")
    [outcome] = run(dataset, tmp_path, [Unit("m", 0)], retries=0)
    assert outcome.failed and outcome.error == "RuntimeError: boom"
    assert slurm_.calls("sacct") == []


@pytest.mark.parametrize(
    "phase, seconds, expected",
    [
        ("queued", 60 + 30, None),
        ("queued", 60 + 31, "still queued after 1.5 min, beyond its time limit plus grace"),
        ("running", 60 + 31, "still running after 1.5 min, beyond its time limit plus grace"),
        ("gone", 15, None),
        ("gone", 16, "left the queue without a result (state last seen RUNNING)"),
    ],
)
def test_every_wait_has_a_limit(phase, seconds, expected, monkeypatch):
    monkeypatch.setattr(executors, "RESULT_LAG_S", 15.0)
    limit = ExecutorSettings(kind="slurm", time_min=1, grace_s=30).wait_limit_s
    attempt = Attempt(job=None, limit_s=limit, since=1000.0, phase=phase, state="RUNNING")
    if phase == "gone":
        attempt.state = "last seen RUNNING"
    error = attempt.overdue(1000.0 + seconds)
    assert error == expected if expected is None else error.startswith(expected)


def test_a_wait_starts_again_when_a_job_starts_running():
    attempt = Attempt(job=None, limit_s=90.0, since=0.0)
    queued = slurm.QueuedJob("7", "PENDING", "Priority", "debug")
    running = slurm.QueuedJob("7", "RUNNING", "None", "debug")
    assert attempt.observe(queued, 80.0, lambda job_id: None) is None
    assert attempt.observe(running, 85.0, lambda job_id: None) is None
    assert attempt.observe(running, 170.0, lambda job_id: None) is None  # 85 s running
    error = attempt.observe(running, 176.0, lambda job_id: None)
    assert error.startswith("still running after 1.5 min") and "state RUNNING" in error


# --- 2. a request that no node can hold -------------------------------------------------------


def test_a_request_no_partition_node_can_hold_stops_the_run_in_one_line(
    dataset, tmp_path, monkeypatch, capsys
):
    slurm_ = fake(tmp_path, monkeypatch, "pending:PartitionConfig")
    common = ["--dataset", str(dataset.root), "--profile", "smoke", "--quiet"]
    argv = ["--method", "nnunet2d", "--executor", "slurm"]  # 8 CPUs, 32 GB, 1 GPU a unit
    assert bench.cli.main(["run", *common, "--workdir", str(tmp_path / "work"), *argv]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]

    assert err == [
        "error: nnunet2d fold 0 (job 100) can never start: pending with reason PartitionConfig, "
        "which never clears; a unit asks for 8 CPU(s), 32 GB, 1 GPU(s) and partition debug has "
        "1 node(s), the largest with 2 CPU(s), 21.2 GB, 0 GPU(s): lower --cpus-per-unit, "
        "--mem-gb or --gpus-per-unit, or choose another --partition"
    ]
    assert sorted(sum(slurm_.calls("scancel"), [])) == ["100", "101"]  # both folds' jobs


@pytest.mark.parametrize(
    "reason, request_, never",
    [
        ("PartitionConfig", slurm.Request(1, 1, 0), True),
        ("PartitionTimeLimit", slurm.Request(1, 1, 0), True),
        ("Resources", slurm.Request(2, 21, 0), False),  # the node frees up eventually
        ("Resources", slurm.Request(2, 22, 0), True),  # 22 GB > 21.2 GB
        ("Resources", slurm.Request(3, 1, 0), True),
        ("Resources", slurm.Request(1, 1, 1), True),
        ("ReqNodeNotAvail, UnavailableNodes:vm", slurm.Request(1, 1, 0), False),
        ("ReqNodeNotAvail, UnavailableNodes:vm", slurm.Request(4, 1, 0), True),
        ("Priority", slurm.Request(64, 1000, 8), False),
    ],
)
def test_which_pending_reasons_never_clear(reason, request_, never, tmp_path, monkeypatch):
    fake(tmp_path, monkeypatch, "ok")
    job = slurm.QueuedJob("7", "PENDING", reason, "debug")
    assert bool(slurm.never_starts(job, request_)) is never


@pytest.mark.parametrize(
    "gres, gpus",
    [("(null)", 0), ("gpu:4", 4), ("gpu:a100:2(S:0-1)", 2), ("gpu:2,mps:200", 2), ("mps:8", 0)],
)
def test_gpus_are_read_from_sinfos_generic_resources(gres, gpus):
    assert slurm.gpus_in(gres) == gpus


def test_the_default_partition_is_the_starred_one(tmp_path, monkeypatch):
    fake(tmp_path, monkeypatch, "ok", sinfo="a|gpu|8|64000|gpu:2\nb|cpu*|4|8000|(null)\n")
    assert slurm.partition_nodes(None) == ("cpu", [slurm.Node("b", 4, 8000, 0)])
    assert slurm.offer("gpu") == "partition gpu has 1 node(s), the largest with 8 CPU(s), " + (
        "62.5 GB, 2 GPU(s)"
    )


# --- 3. SIGTERM and SIGINT cancel the run's jobs ----------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_cancels_queued_and_running_jobs(signum, dataset, tmp_path, monkeypatch):
    slurm_ = fake(tmp_path, monkeypatch, "running", "pending:Priority")
    argv = [
        *("run", "--method", "nnunet2d", "--executor", "slurm", "--gpus-per-unit", "0"),
        *("--dataset", str(dataset.root), "--workdir", str(tmp_path / "work"), "--quiet"),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = "import sys, bench.cli; sys.exit(bench.cli.main(sys.argv[1:]))"
    child = subprocess.Popen(
        [sys.executable, "-c", code, *argv], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while len(slurm_.calls("squeue")) < 1 and time.monotonic() < deadline:
            time.sleep(0.2)  # both jobs are submitted before the first squeue
        child.send_signal(signum)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 130, err
    lines = err.strip().splitlines()
    assert "cancelling 2 unfinished job(s): 100, 101" in lines[-2]
    assert lines[-1] == "interrupted: finished outputs are kept; rerun to resume"
    assert sorted(sum(slurm_.calls("scancel"), [])) == ["100", "101"]


# --- 4. a rerun submits only what is left -----------------------------------------------------


def test_finished_units_are_not_submitted(dataset, tmp_path, monkeypatch):
    monkeypatch.setitem(methods()._entries, "exec_dim", Entry("exec_dim", "test", obj=Dim))
    common = ["--dataset", str(dataset.root), "--profile", "smoke", "--quiet", "--no-score"]
    workdir = ["--workdir", str(tmp_path / "work")]
    assert bench.cli.main(["run", "--method", "exec_dim", "--folds", "0", *common, *workdir]) == 0
    slurm_ = fake(tmp_path, monkeypatch, "ok")

    fold0, fold1 = run(dataset, tmp_path, [Unit("exec_dim", 0), Unit("exec_dim", 1)])

    assert len(slurm_.calls("sbatch")) == 1  # fold 1 only
    assert fold0.attempts == 0 and not fold0.result.trained_now
    assert fold0.result.skipped == list(load_split(dataset).fold_ids(0).val)
    assert fold1.result == {"job": "100"}


# --- 5. one line for sbatch's refusals, sacct's absence said once -----------------------------


@pytest.mark.parametrize(
    "lines",
    [
        [
            "sbatch: error: invalid partition specified: nope",
            "sbatch: error: Batch job submission failed: Invalid partition name specified",
        ],
        [
            "sbatch: error: Batch job submission failed: Invalid partition name specified",
            "sbatch: error: invalid partition specified: nope",
        ],
        ["sbatch: error: invalid partition specified: nope"],
    ],
)
def test_a_refused_partition_is_one_line_with_what_sbatch_said(
    lines, dataset, tmp_path, monkeypatch, capsys
):
    fake(tmp_path, monkeypatch, "refuse:" + "|".join(lines))
    with pytest.raises(BenchError) as error:
        run(dataset, tmp_path, [Unit("m", 0)], partition="nope")
    message = str(error.value)
    assert "\n" not in message and message.startswith("could not submit m fold 0: sbatch: ")
    assert "invalid partition specified: nope" in message
    assert "sbatch: error" not in capsys.readouterr().err  # submitit's own copy is gone


def test_a_gpu_request_on_a_cpu_cluster_says_to_pass_zero(dataset, tmp_path, monkeypatch):
    refusal = "refuse:sbatch: error: Invalid generic resource (gres) specification"
    fake(tmp_path, monkeypatch, refusal)
    with pytest.raises(BenchError, match=r"\(--gpus-per-unit 1: pass --gpus-per-unit 0 on a CPU"):
        run(dataset, tmp_path, [Unit("m", 0)], gpus_per_unit=1)


def test_too_much_memory_refused_at_submission_says_what_the_partition_offers(
    dataset, tmp_path, monkeypatch
):
    refusal = (
        "refuse:sbatch: error: Memory specification can not be satisfied|sbatch: error: Batch "
        "job submission failed: Requested node configuration is not available"
    )
    fake(tmp_path, monkeypatch, refusal)
    with pytest.raises(BenchError) as error:
        run(dataset, tmp_path, [Unit("m", 0)], cpus_per_unit=1, mem_gb=32)
    assert str(error.value) == (
        "could not submit m fold 0: sbatch: Memory specification can not be satisfied; Batch "
        "job submission failed: Requested node configuration is not available (a unit asks "
        "for 1 CPU(s), 32 GB, 0 GPU(s) and partition debug has 1 node(s), the largest with "
        "2 CPU(s), 21.2 GB, 0 GPU(s))"
    )


def test_missing_accounting_is_said_once_and_sacct_asked_once(
    dataset, tmp_path, monkeypatch, caplog, capfd
):
    slurm_ = fake(tmp_path, monkeypatch, "vanish:3")
    caplog.set_level(logging.INFO)
    outcomes = run(dataset, tmp_path, [Unit("m", 0), Unit("m", 1)], retries=1)

    assert all(o.failed for o in outcomes) and len(slurm_.calls("sbatch")) == 4
    assert len(slurm_.calls("squeue")) > 4  # many polls
    assert len(slurm_.calls("sacct")) == 1
    said = [r.getMessage() for r in caplog.records if "sacct" in r.getMessage()]
    assert said == [
        "sacct failed (Slurm accounting storage is disabled): job states come from squeue alone"
    ]
    assert "Bypassing sacct error" not in caplog.text + capfd.readouterr().err
