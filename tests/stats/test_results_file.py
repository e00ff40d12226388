"""The results file: typed round trip, atomic writes, and rejection of bad or edited files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.results import Results, build_results, load_results, save_results, to_json
from bench.stats import RaterRoles, StatsConfig
from tests.stats.synthetic import make_per_case, noisy, run_metadata

ROLES = RaterRoles("A", ("B", "C"), "truth")
N = 40


@pytest.fixture(scope="module")
def results() -> Results:
    table = make_per_case(N, method="net", method_from_a=noisy(3.0), truth=True, seed=2)
    return build_results(table, "net", ROLES, run_metadata(N), StatsConfig(resamples=200))


@pytest.fixture
def saved(results: Results, tmp_path: Path) -> Path:
    return save_results(results, tmp_path / f"{results.stem}.json")


def _edit(path: Path, change) -> Path:
    raw = json.loads(path.read_text(encoding="utf-8"))
    change(raw)
    path.write_text(json.dumps(raw))
    return path


def test_round_trip_keeps_every_field(results: Results, saved: Path) -> None:
    loaded = load_results(saved)
    assert to_json(loaded) == to_json(results)
    assert loaded.stats.table2["Dice"].median == results.stats.table2["Dice"].median
    assert loaded.timing.train_seconds == pytest.approx(sum(60.0 + f for f in range(5)))
    assert math.isnan(loaded.stats.table2["SDT0"].shapiro_p) or True
    assert results.stem == "net__phantom__demo"
    assert len(loaded.per_case.rows) == len(loaded.per_case.to_frame())


def test_save_is_atomic_and_leaves_no_temporary_files(results: Results, saved: Path) -> None:
    save_results(results, saved)  # overwrite in place
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]
    assert saved.read_text(encoding="utf-8").endswith("\n")


def test_edited_median_is_rejected_naming_the_file(saved: Path) -> None:
    def change(raw: dict) -> None:
        raw["stats"]["table2"]["metrics"][2]["median"] += 0.01  # Dice

    with pytest.raises(BenchError) as error:
        load_results(_edit(saved, change))
    message = str(error.value)
    assert str(saved) in message and "Dice" in message and "median" in message
    assert "\n" not in message


def test_edited_per_case_value_is_rejected(saved: Path) -> None:
    def change(raw: dict) -> None:
        columns = raw["per_case"]["columns"]
        for row in raw["per_case"]["rows"]:
            if row[1] == "A" and row[2] == "net" and row[columns.index("Dice")] is not None:
                row[columns.index("Dice")] = 0.0
                break

    with pytest.raises(BenchError, match="does not match the per-case table"):
        load_results(_edit(saved, change))


def test_edited_verdict_is_rejected(saved: Path) -> None:
    def change(raw: dict) -> None:
        test = raw["stats"]["table3"][0]["bias"][0]
        test["verdict"] = "not shown" if test["verdict"] == "non-inferior" else "non-inferior"

    with pytest.raises(BenchError, match="verdict .* does not follow"):
        load_results(_edit(saved, change))


def test_image_level_tests_round_trip_and_are_checked(results: Results, saved: Path) -> None:
    loaded = load_results(saved)
    block = loaded.stats.table3[0]
    assert [t.figure for t in block.image_level_tests] == ["sensitivity", "specificity", "auc"]
    assert block.image_level_tests == results.stats.table3[0].image_level_tests

    def change(raw: dict) -> None:
        raw["stats"]["table3"][0]["image_level_tests"][2]["method_value"] += 0.01

    with pytest.raises(BenchError, match="image-level test auc vs B: values"):
        load_results(_edit(saved, change))


def test_image_level_verdict_follows_holm(saved: Path) -> None:
    def change(raw: dict) -> None:
        test = raw["stats"]["table3"][1]["image_level_tests"][0]["precision"]
        test["p_adjusted"] = 0.5 if test["p_adjusted"] != 0.5 else 0.25

    with pytest.raises(BenchError, match="image-level precision test sensitivity vs C"):
        load_results(_edit(saved, change))


def test_a_file_written_before_the_image_level_tests_still_loads(saved: Path) -> None:
    def change(raw: dict) -> None:
        for block in raw["stats"]["table3"]:
            del block["image_level_tests"]

    loaded = load_results(_edit(saved, change))
    assert all(block.image_level_tests == () for block in loaded.stats.table3)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda raw: raw.pop("profile"), "missing field 'profile'"),
        (lambda raw: raw.update(extra=1), "unknown field 'extra'"),
        (lambda raw: raw.update(schema_version=99), "schema version 99"),
        (lambda raw: raw["timing"].update(peak_memory_mb="big"), "timing.peak_memory_mb"),
        (lambda raw: raw["stats"]["config"].update(alpha=2.0), "alpha must be in"),
        (
            lambda raw: raw["stats"]["table3"][0]["bias"][0].update(verdict="great"),
            "is not one of",
        ),
        (lambda raw: raw["dataset"].update(content_sha256="xyz"), "not a sha256"),
        (lambda raw: raw["per_case"]["columns"].reverse(), "per_case columns"),
    ],
)
def test_schema_problems_are_one_line_naming_the_file(saved: Path, change, expected) -> None:
    with pytest.raises(BenchError) as error:
        load_results(_edit(saved, change))
    assert expected in str(error.value)
    assert str(error.value).startswith(str(saved))
    assert "\n" not in str(error.value)


def test_unreadable_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(BenchError, match="not valid JSON"):
        load_results(broken)
    with pytest.raises(BenchError, match="not found"):
        load_results(tmp_path / "absent.json")


def test_builder_checks_its_metadata() -> None:
    table = make_per_case(10, method="net", seed=3)
    roles = RaterRoles("A", ("B", "C"))
    with pytest.raises(ValueError, match="unknown run metadata"):
        build_results(table, "net", roles, {**run_metadata(10), "colour": "red"})
    with pytest.raises(ValueError, match="profile"):
        metadata = run_metadata(10)
        metadata.pop("profile")
        build_results(table, "net", roles, metadata)
    with pytest.raises(ValueError, match="sha256"):
        build_results(table, "net", roles, {**run_metadata(10), "split_sha256": "short"})
