"""The results file's optional `calibration` field: round trip, absent in older files, checked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.errors import BenchError
from bench.evaluate.calibration import TRUTH, calibration
from bench.results import build_results, load_results, save_results, to_json
from bench.stats import RaterRoles, StatsConfig
from tests.stats.synthetic import make_per_case, noisy, run_metadata

ROLES = RaterRoles("A", ("B", "C"), "truth")
N = 12


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    table = make_per_case(N, method="net", method_from_a=noisy(3.0), truth=True, seed=2)
    truth = np.array([1, 1, 0, 0])
    target = calibration(np.array([0.9, 0.9, 0.9, 0.1]), truth, TRUTH)
    run = {**run_metadata(N), "calibration": {TRUTH: to_json(target)}}
    results = build_results(table, "net", ROLES, run, StatsConfig(resamples=50))
    return save_results(results, tmp_path_factory.mktemp("r") / f"{results.stem}.json")


def test_calibration_round_trips(saved: Path) -> None:
    loaded = load_results(saved)
    assert loaded.calibration[TRUTH].ece == pytest.approx(0.2)
    assert np.isnan(loaded.calibration[TRUTH].bin_probability[0])  # empty bin: null in JSON
    assert to_json(load_results(save_results(loaded, saved))) == to_json(loaded)


def test_a_file_without_calibration_reads_as_empty(saved: Path, tmp_path: Path) -> None:
    """Files written before calibration existed (schema 1-3 without the field) still read."""
    raw = json.loads(saved.read_text(encoding="utf-8"))
    del raw["calibration"]
    older = tmp_path / saved.name
    older.write_text(json.dumps(raw), encoding="utf-8")
    assert load_results(older).calibration == {}


def test_inconsistent_bins_are_one_line_naming_the_file(saved: Path, tmp_path: Path) -> None:
    raw = json.loads(saved.read_text(encoding="utf-8"))
    raw["calibration"][TRUTH]["voxels"] += 1
    edited = tmp_path / saved.name
    edited.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(BenchError, match=r"calibration\.truth: the bins count 4 voxels, not 5"):
        load_results(edited)
    assert str(edited) in str(pytest.raises(BenchError, load_results, edited).value)
