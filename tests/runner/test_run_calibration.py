"""`bench run`'s results file carries the calibration of the probability maps it wrote."""

from __future__ import annotations

from bench.pipeline import run_method, score_run
from bench.registry import methods
from bench.results import load_results
from bench.splits import load_split, make_split, write_split
from tests.factories import write_tiny_dataset
from tests.runner.test_pipeline import Toy


def test_results_carry_calibration_when_probabilities_exist(tmp_path):
    dataset = write_tiny_dataset(tmp_path / "tiny", n_patients=6, truth="truth")
    write_split(dataset, make_split(dataset, n_folds=3))
    with methods().temporary({"toy_calibration": Toy}):
        result = run_method("toy_calibration", dataset, "smoke", tmp_path / "w", progress=False)
        report = score_run(result, dataset, load_split(dataset))
    calibration = load_results(report.results_path).calibration
    assert set(calibration) == {"truth", "raters"}
    for target in calibration.values():
        assert target.cases == 6 and sum(target.bin_count) == target.voxels > 0
        assert 0 <= target.ece <= 1 and 0 <= target.auc <= 1
