"""`bench run --executor`: units (method, fold) in separate processes through submitit.

The methods (`tests.runner.executor_methods`) predict sigmoid(intensity / 10 - offset), so a
mask is known from its image alone; submitit's children import them by module path (the repo
root goes on PYTHONPATH, as pytest's `pythonpath` setting does not reach a child). Tests that
start child processes are slow: each child imports torch and MONAI (~15 s on 2 busy cores).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bench.cli
from bench.executors import ExecutorSettings, make_executor, run_unit, unit_folder
from bench.io import read_image
from bench.pipeline import Unit, plan_units
from bench.predictions import is_finished
from bench.registry import methods
from bench.results import load_results
from bench.splits import load_split, make_split, write_split
from tests.cluster.fake_slurm import FakeSlurm
from tests.factories import write_tiny_dataset
from tests.runner.executor_methods import FAILURE_MESSAGE, TEST_METHODS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dataset(tmp_path):
    data = write_tiny_dataset(tmp_path / "tiny")  # 6 patients, one with a second scan
    write_split(data, make_split(data, n_folds=2))
    return data


@pytest.fixture
def test_methods(monkeypatch):
    """Register the test methods here; a child finds them through `run_unit`'s `entry`."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)
    with methods().temporary(TEST_METHODS):
        yield


def bench_run(dataset, workdir, *argv):
    common = ["--dataset", str(dataset.root), "--profile", "smoke", "--quiet"]
    return bench.cli.main(["run", *common, "--workdir", str(workdir), *argv])


def expected_mask(dataset, case_id, offset):
    image, _ = read_image(dataset.case(case_id).image)
    return (image.astype(np.float64) / 10.0 - offset > 0).astype(np.uint8)


# --- in separate processes -------------------------------------------------------------------


@pytest.mark.slow
def test_local_executor_runs_units_as_processes_and_matches_inline(
    dataset, test_methods, tmp_path, capsys
):
    both = ["--method", "exec_bright,exec_dim", "--folds", "0,1"]
    assert bench_run(dataset, tmp_path / "inline", *both) == 0
    local = [*both, "--executor", "local", "--max-parallel", "2", "--time-min", "10"]
    assert bench_run(dataset, tmp_path / "local", *local) == 0
    out = capsys.readouterr().out
    assert out.count("Table 2: exec_bright against reference rater A") == 2

    first_scans = sorted(c.id for c in dataset.cases if c.scan_index == 0)
    pids = set()
    for name in ("exec_bright", "exec_dim"):
        offset = TEST_METHODS[name].offset
        for fold in (0, 1):
            pid = tmp_path / "local" / "models" / name / "smoke" / f"fold_{fold}.pid"
            pids.add(int(pid.read_text(encoding="utf-8")))
        stem = f"{name}__tiny__smoke.json"
        inline = load_results(tmp_path / "inline" / "results" / stem)
        local = load_results(tmp_path / "local" / "results" / stem)
        assert sorted(local.prediction_sha256) == first_scans
        assert local.prediction_sha256 == inline.prediction_sha256
        assert local.per_case.to_frame().equals(inline.per_case.to_frame())
        for case in first_scans:
            mask, _ = read_image(
                tmp_path / "local" / "predictions" / name / "smoke" / f"{case}.nii.gz"
            )
            assert np.array_equal(mask, expected_mask(dataset, case, offset))
    assert len(pids) == 4 and os.getpid() not in pids  # one process per unit, none of them us
    logs = list((tmp_path / "local" / "executor" / "exec_dim" / "smoke" / "fold_1").glob("*.err"))
    assert logs  # submitit's logs live in the work directory


@pytest.mark.slow
def test_failed_units_are_retried_reported_and_do_not_stop_the_others(
    dataset, test_methods, tmp_path, capsys, caplog
):
    names = "exec_fails_once,exec_crashes_then_raises"
    argv = ["--method", names, "--folds", "0", "--executor", "local", "--time-min", "10"]
    code = bench_run(dataset, tmp_path / "work", *argv, "--retries", "1")
    err = capsys.readouterr().err.strip().splitlines()
    models = tmp_path / "work" / "models"

    assert code == 2
    assert len(err) == 2 and all(line.startswith("error: ") for line in err)
    assert "unit exec_crashes_then_raises fold 0 failed after 2 attempt(s)" in err[0]
    assert err[0].split(" attempt(s): ")[1].startswith(f"RuntimeError: {FAILURE_MESSAGE} (log: ")
    log = Path(err[0].split("(log: ")[1].rstrip(")"))
    assert log.is_file() and FAILURE_MESSAGE in log.read_text(encoding="utf-8")
    assert log.is_relative_to(tmp_path / "work" / "executor" / "exec_crashes_then_raises")
    assert "1 of 2 unit(s) failed" in err[1]
    assert "exec_crashes_then_raises fold 0 failed (died without a result" in caplog.text
    crashed = models / "exec_crashes_then_raises" / "smoke"
    assert len(set(crashed.joinpath("fold_0.attempts").read_text(encoding="utf-8").split())) == 2
    assert not (crashed / "fold_0.done.json").exists()

    recovered = models / "exec_fails_once" / "smoke"  # raised, was resubmitted, finished
    attempts = recovered.joinpath("fold_0.attempts").read_text(encoding="utf-8").split()
    assert len(set(attempts)) == 2 and (recovered / "fold_0.done.json").is_file()
    predictions = tmp_path / "work" / "predictions" / "exec_fails_once" / "smoke"
    val = load_split(dataset).fold_ids(0).val
    assert all(is_finished(predictions, case) for case in val)


# --- without child processes -----------------------------------------------------------------


def test_inline_a_method_that_raises_is_one_line_and_the_next_method_runs(
    dataset, test_methods, tmp_path, capsys
):
    code = bench_run(dataset, tmp_path / "work", "--method", "exec_fails_once,exec_bright")
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()

    assert code == 2
    assert err == [
        f"error: method exec_fails_once fold 0: fit failed: RuntimeError: {FAILURE_MESSAGE} "
        "(`bench --debug run ...` shows the traceback)"
    ]
    assert "Traceback" not in captured.err
    predictions = tmp_path / "work" / "predictions" / "exec_bright" / "smoke"
    every_case = load_split(dataset).validated_cases()
    assert all(is_finished(predictions, case) for case in every_case)
    assert "results:" in captured.out  # the method after the failed one was run and scored


def test_the_unit_function_pickles_by_reference_with_plain_arguments():
    assert pickle.loads(pickle.dumps(run_unit)) is run_unit
    assert b"run_unit" in pickle.dumps(run_unit) and len(pickle.dumps(run_unit)) < 100


def test_run_unit_trains_and_predicts_one_fold(dataset, tmp_path):
    target = "tests.runner.executor_methods:Dim"  # the child's registry lacks the name
    assert "exec_unregistered" not in methods()
    try:
        result = run_unit(
            "exec_unregistered", str(dataset.root), "smoke", str(tmp_path), 1, "cpu", target
        )
    finally:  # run_unit registered it, as a child process would
        if "exec_unregistered" in methods():
            methods().unregister("exec_unregistered")
    val = load_split(dataset).fold_ids(1).val
    assert result.fold == 1 and result.trained_now and result.predicted == list(val)
    assert (tmp_path / "models" / "exec_unregistered" / "smoke" / "fold_1.done.json").is_file()


def test_plan_units_is_method_by_method_and_refuses_unknown_folds(dataset):
    from bench.errors import BenchError

    split = load_split(dataset)
    assert plan_units(["a", "b"], split) == [Unit("a", 0), Unit("a", 1), Unit("b", 0), Unit("b", 1)]
    assert plan_units(["a"], split, [1]) == [Unit("a", 1)]
    with pytest.raises(BenchError, match="no fold 4"):
        plan_units(["a"], split, [0, 4])


def test_dry_run_prints_each_units_state_and_runs_nothing(dataset, test_methods, tmp_path, capsys):
    work = tmp_path / "work"
    split = load_split(dataset)
    val0 = split.fold_ids(0).val
    assert bench_run(dataset, work, "--method", "exec_bright", "--folds", "0", "--no-score") == 0
    record = work / "predictions" / "exec_bright" / "smoke" / "records" / f"{val0[0]}.json"
    record.unlink()  # as if killed while writing that case
    capsys.readouterr()
    before = sorted(p for p in work.rglob("*"))

    argv = ["--method", "exec_bright,exec_dim", "--dry-run", "--executor", "slurm"]
    assert bench_run(dataset, work, *argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert sorted(p for p in work.rglob("*")) == before  # nothing written, no slurm needed
    rows = [line.split() for line in out if line.startswith("exec_")]
    n0, n1 = len(val0), len(split.fold_ids(1).val)
    assert rows[:4] == [
        ["exec_bright", "0", "yes", str(n0 - 1), "1", "predict"],
        ["exec_bright", "1", "no", "0", str(n1), "train", "+", "predict"],
        ["exec_dim", "0", "no", "0", str(n0), "train", "+", "predict"],
        ["exec_dim", "1", "no", "0", str(n1), "train", "+", "predict"],
    ]
    assert f"exec_bright: scoring would run on {n0 + n1} case(s) and write the results" in out[-2]

    assert bench_run(dataset, work, "--method", "exec_dim", "--folds", "1", "--dry-run") == 0
    out = capsys.readouterr().out
    assert f"scoring would run on {n1} case(s) but no results file ({n0} validation" in out


def test_dry_run_imports_no_torch(dataset, tmp_path):
    code = (
        "import sys, bench.cli\n"
        f"argv = ['run', '--method', 'nnunet3d,smp25d_unet', '--dataset', {str(dataset.root)!r},"
        f" '--workdir', {str(tmp_path / 'work')!r}, '--dry-run', '--executor', 'local']\n"
        "assert bench.cli.main(argv) == 0\n"
        "heavy = [m for m in ('torch', 'monai', 'nnunetv2', 'submitit') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "nnunet3d" in done.stdout and "smp25d_unet" in done.stdout


def test_slurm_units_ask_for_what_the_options_say(tmp_path, monkeypatch):
    FakeSlurm(tmp_path / "slurm", monkeypatch, ["ok"])  # submitit wants srun on PATH
    settings = ExecutorSettings(
        kind="slurm", partition="gpu", gpus_per_unit=2, time_min=90, mem_gb=48, cpus_per_unit=6
    )
    unit = Unit("nnunet3d", 3)
    folder = unit_folder(tmp_path, unit, "paper")
    assert folder == tmp_path / "executor" / "nnunet3d" / "paper" / "fold_3"
    sbatch = make_executor(settings, folder, unit)._executor._make_submission_file_text("x", "u")
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --gpus-per-node=2",
        "#SBATCH --time=90",
        "#SBATCH --mem=48GB",
        "#SBATCH --cpus-per-task=6",
        "#SBATCH --job-name=bench-nnunet3d-fold3",
        "#SBATCH --nodes=1",
    ):
        assert line in sbatch.splitlines()


def test_local_units_keep_this_process_gpus_and_the_time_limit(tmp_path, monkeypatch):
    unit = Unit("m", 0)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    executor = make_executor(ExecutorSettings(time_min=30), tmp_path, unit)
    assert executor.parameters["timeout_min"] == 30
    assert executor.parameters["setup"] == ["export CUDA_VISIBLE_DEVICES=2,3"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    executor = make_executor(ExecutorSettings(), tmp_path, unit)
    assert executor.parameters["setup"] == ["unset CUDA_VISIBLE_DEVICES"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--executor", "slurm"], "needs Slurm (sbatch, srun) on PATH"),
        (["--executor", "local", "--max-parallel", "0"], "--max-parallel must be at least 1"),
        (["--executor", "local", "--retries", "-1"], "--retries must be at least 0"),
        (["--executor", "local", "--folds", "5"], "the split has no fold 5"),
        (["--method", "exec_bright,nnunet3dd"], "did you mean 'nnunet3d'"),
    ],
)
def test_bad_executor_input_is_one_line_and_exit_2(
    argv, message, dataset, test_methods, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("PATH", str(tmp_path / "no-slurm-here"))
    if "--method" not in argv:
        argv = ["--method", "exec_bright", *argv]
    assert bench_run(dataset, tmp_path / "work", *argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "work" / "models").exists()  # nothing ran
