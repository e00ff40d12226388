"""Results schema 2: each fold's postprocessing and training curves; schema 3: the lesion-wise
per-case columns; version-1 and version-2 files still load."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.leaderboard.build import write_leaderboard
from bench.leaderboard.markdown import curves_path, render_method_page
from bench.metric_names import LESION_NAMES, PER_CASE_COLUMNS
from bench.results import (
    SCHEMA_VERSION,
    build_results,
    load_results,
    save_results,
    to_json,
)
from bench.stats import RaterRoles, StatsConfig
from tests.stats.synthetic import make_per_case, noisy, run_metadata

ROLES = RaterRoles("A", ("B", "C"), "truth")
CHOICE = {
    "threshold": 0.7,
    "components": "largest",
    "min_component_ml": 0.0,
    "intracranial": False,
    "holdout_cases": ["case001", "case007"],
    "holdout_dice": 0.61,
    "plain_dice": 0.42,
    "candidates": 20,
}


@pytest.fixture(scope="module")
def per_case():
    return make_per_case(12, method="net", method_from_a=noisy(3.0), truth=True, seed=2)


def build(per_case, **extra):
    metadata = {**run_metadata(12), **extra}
    return build_results(per_case, "net", ROLES, metadata, StatsConfig(resamples=50))


def test_postprocessing_and_curves_round_trip_and_show_on_the_method_page(per_case, tmp_path):
    curve = {"train_loss": [0.1, -0.2], "val_pseudo_dice": [0.0, 0.4]}
    results = build(per_case, postprocessing={"0": CHOICE}, training_curves={"0": curve})
    path = save_results(results, tmp_path / "r.json")
    loaded = load_results(path)
    assert to_json(loaded) == to_json(results) and loaded.schema_version == SCHEMA_VERSION == 3
    assert loaded.postprocessing["0"].holdout_cases == ("case001", "case007")
    assert loaded.training_curves["0"].val_pseudo_dice == (0.0, 0.4)
    (line,) = [row for row in render_method_page(loaded).splitlines() if "Postprocessing" in row]
    assert line.startswith(
        "| Postprocessing | fold 0: threshold 0.7, largest component only (hold-out of 2: Dice "
        "0.610, plain 0.420)"
    )


def test_learning_curves_are_plotted_on_the_method_page(per_case, tmp_path):
    curve = {"train_loss": [0.1, -0.2, -0.3], "val_pseudo_dice": [0.0, 0.4, 0.5]}
    results = build(per_case, training_curves={"0": curve, "1": curve})
    save_results(results, tmp_path / "results" / f"{results.stem}.json")
    write_leaderboard(tmp_path / "results", tmp_path / "board" / "README.md")
    figure = tmp_path / "board" / curves_path(results)
    assert figure.read_bytes().startswith(b"\x89PNG")
    page = render_method_page(results)
    assert "## Learning curves" in page and f"](../{curves_path(results)})" in page
    assert curves_path(build(per_case)) is None


def without_lesion_columns(raw: dict) -> dict:
    """The per-case table as schema versions 1 and 2 have it: no lesion-wise columns."""
    keep = [i for i, c in enumerate(PER_CASE_COLUMNS) if c not in LESION_NAMES]
    table = raw["per_case"]
    table["columns"] = [table["columns"][i] for i in keep]
    table["rows"] = [[row[i] for i in keep] for row in table["rows"]]
    return raw


def test_a_version_2_file_loads_with_the_lesion_columns_nan(per_case, tmp_path):
    results = build(per_case)
    path = save_results(results, tmp_path / "r.json")
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw["schema_version"] = 2
    Path(path).write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(BenchError, match="per_case columns are not .* of schema version 2"):
        load_results(path)
    Path(path).write_text(json.dumps(without_lesion_columns(raw)), encoding="utf-8")
    loaded = load_results(path)
    table = loaded.per_case.to_frame()
    assert tuple(table.columns) == PER_CASE_COLUMNS
    assert table.loc[:, list(LESION_NAMES)].isna().all().all()
    assert to_json(loaded.stats) == to_json(results.stats)


def test_lesion_columns_round_trip(per_case, tmp_path):
    counted = per_case.assign(LesionTP=2.0, LesionFP=1.0, LesionFN=0.0, LesionF1=0.8)
    loaded = load_results(save_results(build(counted), tmp_path / "r.json"))
    table = loaded.per_case.to_frame()
    assert (table["LesionTP"] == 2.0).all() and (table["LesionF1"] == 0.8).all()
    assert math.isnan(table["LesionCountDiff"].iloc[0])  # absent from the input: NaN


def test_a_version_1_file_loads_with_no_postprocessing_and_shows_no_such_line(per_case, tmp_path):
    path = save_results(build(per_case), tmp_path / "r.json")
    raw = without_lesion_columns(json.loads(path.read_text(encoding="utf-8")))
    for name in ("postprocessing", "training_curves"):
        del raw[name]
    raw["schema_version"] = 1
    Path(path).write_text(json.dumps(raw), encoding="utf-8")
    loaded = load_results(path)
    assert loaded.postprocessing == {} and loaded.training_curves == {}
    assert "Postprocessing" not in render_method_page(loaded)
    raw["postprocessing"] = {}
    Path(path).write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(BenchError, match="not part of schema version 1"):
        load_results(path)


def test_a_malformed_choice_is_rejected(per_case):
    with pytest.raises(ValueError, match="postprocessing.0"):
        build(per_case, postprocessing={"0": {**CHOICE, "threshold": "high"}})


def test_the_method_page_shows_lesion_wise_detection_or_says_it_is_missing(per_case):
    page = render_method_page(build(per_case))
    assert "## Lesion-wise detection\n\nNot in this results file" in page
    counts = {"LesionTP": 1.0, "LesionFP": 0.0, "LesionFN": 1.0, "LesionF1": 2 / 3}
    bins = {"LesionTP_lt1ml": 1.0, "LesionFN_lt1ml": 0.0, "LesionTP_gt10ml": 0.0}
    counted = per_case.assign(**counts, **bins, LesionCountDiff=1.0, LesionFN_gt10ml=1.0)
    counted = counted.assign(LesionTP_1to10ml=0.0, LesionFN_1to10ml=0.0)
    lines = render_method_page(build(counted)).splitlines()
    (row,) = [line for line in lines if line.startswith("| A → net ")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells == ["A → net", "12 / 0 / 12", "0.667", "1", "12 / 12", "0 / 0", "0 / 12"]
    shown = {line.split("|")[1].strip() for line in lines if " → " in line} - {"Reference → test"}
    assert shown == {
        *(f"{r} → net" for r in ("A", "B", "C", "truth")),
        "B → A",
        "C → A",
        *(f"truth → {r}" for r in "ABC"),
    }
