"""Method pages: the calibration section and Figure 4 panels drawn from a run's own predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.data.dataset import Dataset
from bench.evaluate.calibration import dataset_calibration
from bench.io import read_image, sha256_file, write_image
from bench.leaderboard import check_leaderboard, write_leaderboard
from bench.leaderboard.markdown import panel_cases
from bench.predictions import output_paths
from bench.results import build_results, load_results, save_results, to_json
from bench.stats import RaterRoles, StatsConfig
from tests.factories import write_tiny_dataset
from tests.stats.synthetic import make_per_case, noisy, run_metadata

N = 8
ROLES = RaterRoles("A", ("B", "C"), "truth")
METHOD, PROFILE = "net", "demo"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Dataset, Path, Path]:
    """A tiny dataset, a run's predictions of it and the results file of that run."""
    root = tmp_path_factory.mktemp("run")
    dataset = write_tiny_dataset(root / "tiny", n_patients=N, second_scans=(), truth="truth")
    cases = [case.id for case in dataset.cases]
    predictions = root / "predictions" / METHOD / PROFILE
    for case in cases:
        label, geometry = read_image(dataset.case(case).labels["A"], case)
        probability = np.where(label > 0, 0.8, 0.1).astype(np.float32)
        write_image(probability, geometry, output_paths(predictions, case).probability)
        write_image((label > 0).astype(np.uint8), geometry, output_paths(predictions, case).mask)
    table = make_per_case(N, method=METHOD, method_from_a=noisy(2.0), truth=True, seed=3)
    table["case"] = table["case"].map({f"case{i:03d}": case for i, case in enumerate(cases)})
    metadata = {
        **run_metadata(N, PROFILE, dataset.name),
        "dataset_sha256": dataset.content_sha256,
        "prediction_sha256": {c: sha256_file(output_paths(predictions, c).mask) for c in cases},
        "inference_seconds_per_case": {c: 1.0 for c in cases},
        "calibration": {
            k: to_json(v) for k, v in dataset_calibration(dataset, predictions, cases).items()
        },
    }
    results = build_results(table, METHOD, ROLES, metadata, StatsConfig(resamples=100))
    (root / "board" / "results").mkdir(parents=True)
    save_results(results, root / "board" / "results" / f"{results.stem}.json")
    return dataset, root / "predictions", root / "board"


def _page(board: Path) -> str:
    return (board / "methods" / f"{METHOD}__tiny__{PROFILE}.md").read_text(encoding="utf-8")


def test_calibration_against_truth_and_raters(run) -> None:
    # Every label set equals A: inside p = 0.8, target 1; outside p = 0.1, target 0.
    results = load_results(next((run[2] / "results").glob("*.json")))
    for target in ("truth", "raters"):
        calibration = results.calibration[target]
        inside = calibration.bin_count[8] / calibration.voxels
        assert calibration.ece == pytest.approx(0.2 * inside + 0.1 * (1 - inside), rel=1e-6)
        assert calibration.auc == 1.0


def test_pages_show_calibration_and_example_cases(run, tmp_path: Path) -> None:
    dataset, predictions, board = run
    out = tmp_path / "board"
    out.mkdir()
    (out / "results").symlink_to(board / "results")
    results = load_results(next((board / "results").glob("*.json")))
    write_leaderboard(out / "results", out / "README.md")
    page = _page(out)
    assert "## Calibration" in page and "| truth" in page and "reliability diagram" in page
    assert "No example cases: the run's predictions were not available" in page
    (diagram,) = (out / "figures").glob("*__calibration__*.png")
    assert diagram.read_bytes().startswith(b"\x89PNG")

    argv = ["leaderboard", "--results-dir", str(out / "results"), "--out", str(out / "README.md")]
    extra = ["--predictions-root", str(predictions), "--dataset", str(dataset.root)]
    assert main([*argv, *extra]) == 0
    page = _page(out)
    small, large = panel_cases(results)
    for case in (small, large):
        (panel,) = (out / "figures").glob(f"*__case-{case}__*.png")
        assert f"](../figures/{panel.name})" in page
        assert panel.stat().st_size > 10_000
    assert "No example cases" not in page
    # The panels stay without the predictions: --check passes, a rebuild keeps them.
    assert check_leaderboard(out / "results", out / "README.md") == []
    assert write_leaderboard(out / "results", out / "README.md") == []


def test_predictions_other_than_the_runs_are_not_drawn(run, tmp_path: Path) -> None:
    dataset, predictions, board = run
    results = load_results(next((board / "results").glob("*.json")))
    other = tmp_path / "predictions"
    for case in panel_cases(results):
        source = output_paths(predictions / METHOD / PROFILE, case)
        mask, geometry = read_image(source.mask, case)
        write_image(1 - mask, geometry, output_paths(other / METHOD / PROFILE, case).mask)
    out = tmp_path / "board"
    out.mkdir()
    (out / "results").symlink_to(board / "results")
    write_leaderboard(out / "results", out / "README.md", other, dataset)
    assert "No example cases" in _page(out)
    assert not list((out / "figures").glob("*__case-*.png"))
