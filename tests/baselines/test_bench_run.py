"""`bench run` from the command line, every fold on the smoke profile: predictions, scores,
the study and the results file; a rerun recomputes nothing."""

from __future__ import annotations

import pytest

import bench.cli
from bench.results import load_results

pytestmark = pytest.mark.slow


def test_bench_run_writes_a_results_file_and_resumes(head_dataset, run_root, capsys):
    run_root = run_root / "bench_run"
    argv = ["run", "--method", "nnunet3d", "--dataset", str(head_dataset.root)]
    argv += ["--profile", "smoke", "--workdir", str(run_root), "--quiet"]
    assert bench.cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "Table 2: nnunet3d against reference rater A" in out
    assert "Table 3: bias, nnunet3d against rater B" in out
    assert "Table 3: precision, nnunet3d against rater C" in out
    results = load_results(run_root / "results" / "nnunet3d__synthetic-heads__smoke.json")
    first_scans = {c.id for c in head_dataset.cases if c.scan_index == 0}
    assert set(results.prediction_sha256) == first_scans
    assert set(results.timing.train_seconds_per_fold) == {"0", "1"}
    assert results.profile == "smoke" and results.stats.n_cases == len(first_scans)
    assert results.hardware["torch_threads"] == "1"  # the smoke profile's, recorded

    assert bench.cli.main(argv) == 0
    table = capsys.readouterr().out.split("Table 2")[0]
    assert "earlier" in table and "yes" not in table  # nothing trained again

    board = run_root / "board"
    assert bench.cli.main([*argv, "--publish", "--leaderboard", str(board)]) == 0
    assert (board / "results" / "nnunet3d__synthetic-heads__smoke.json").is_file()
    assert "nnunet3d" in (board / "README.md").read_text(encoding="utf-8")
    assert (
        bench.cli.main(
            [
                "leaderboard",
                "--check",
                "--results-dir",
                str(board / "results"),
                "--out",
                str(board / "README.md"),
            ]
        )
        == 0
    )
