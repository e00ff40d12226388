"""The leaderboard renders from results files alone, deterministically, and `--check` catches
hand edits, tampered results and stale pages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import bench.cli
from bench.errors import BenchError
from bench.leaderboard import check_leaderboard, figures, render, write_leaderboard
from bench.results import build_results, load_results, save_results
from bench.stats import RaterRoles, StatsConfig
from tests.stats.synthetic import eroded_share, identical, make_per_case, noisy, run_metadata

N = 40
ROLES = RaterRoles("A", ("B", "C"))
METHODS = {"copy": identical, "good": noisy(2.0), "eroded": eroded_share(0.25)}


def _write_results(folder: Path, method: str, profile: str, seed: int) -> Path:
    table = make_per_case(N, method=method, method_from_a=METHODS[method], seed=seed)
    results = build_results(
        table, method, ROLES, run_metadata(N, profile), StatsConfig(resamples=200)
    )
    return save_results(results, folder / f"{results.stem}.json")


@pytest.fixture(scope="module")
def results_source(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("source")
    for method in METHODS:
        _write_results(folder, method, "demo", seed=1)
    _write_results(folder, "good", "smoke", seed=2)
    return folder


@pytest.fixture(scope="module")
def written_board(results_source: Path, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("board")
    shutil.copytree(results_source, folder / "results")
    write_leaderboard(folder / "results", folder / "README.md")
    return folder


@pytest.fixture
def board(written_board: Path, tmp_path: Path) -> Path:
    """A private copy of a written leaderboard: results/, README, methods/, figures/."""
    shutil.copytree(written_board, tmp_path, dirs_exist_ok=True)
    return tmp_path


@pytest.fixture
def cli():
    return bench.cli.main


def test_one_ranking_per_profile_ordered_by_sdt5(board: Path) -> None:
    readme = (board / "README.md").read_text(encoding="utf-8")
    demo, smoke = readme.split("## phantom, profile `demo`")[1].split("## phantom, profile")
    assert "`smoke`" in smoke and "eroded" not in smoke and "copy" not in smoke
    table, costs = demo.split("Training time, median inference time")
    ranking = [line for line in table.splitlines() if "](methods/" in line]
    order = [line.split("|")[2].strip().split("]")[0].lstrip("[") for line in ranking]
    assert order == ["copy", "good", "eroded"]
    sdt5 = {
        m: load_results(board / "results" / f"{m}__phantom__demo.json").stats.table2["SDT5"]
        for m in METHODS
    }
    assert sdt5["copy"].median >= sdt5["good"].median >= sdt5["eroded"].median
    assert "[10/10," in demo  # the copy of rater A passes every bias test
    assert "(methods/eroded__phantom__demo.md#against-rater-b)" in demo
    assert [
        line.split("|")[1].strip().split("]")[0].lstrip("[")
        for line in costs.splitlines()
        if "](methods/" in line
    ] == order  # timings and hardware: a table of their own
    assert "2-core CPU" in costs and "2-core CPU" not in table
    (forest,) = (board / "figures").glob("forest__phantom__demo__*.png")
    assert f"](figures/{forest.name})" in table.split("| Rank")[0]  # the ranking opens with it


def test_method_pages_and_figures(board: Path) -> None:
    page = (board / "methods" / "good__phantom__demo.md").read_text(encoding="utf-8")
    for heading in (
        "## Table 2: agreement with reference rater A",
        "## Against rater B",
        "## Against rater C",
        "## Volumes",
    ):
        assert heading in page
    assert "](../figures/good__phantom__demo__volumes__" in page
    for stem in ("good__phantom__demo", "good__phantom__smoke"):
        (png,) = (board / "figures").glob(f"{stem}__volumes__*.png")
        assert png.read_bytes().startswith(b"\x89PNG")
        assert f"](../figures/{png.name})" in (board / "methods" / f"{stem}.md").read_text(
            encoding="utf-8"
        )


def test_rendering_is_deterministic(board: Path) -> None:
    first = render(board / "results", board / "README.md")
    second = render(board / "results", board / "README.md")
    assert first.markdown == second.markdown
    results = load_results(board / "results" / "good__phantom__demo.json")
    png = figures.volume_figure(results, ("A", "B"))
    assert png == figures.volume_figure(results, ("A", "B"))
    assert write_leaderboard(board / "results", board / "README.md") == []


def test_changed_volumes_give_new_figures(board: Path) -> None:
    path = board / "results" / "good__phantom__smoke.json"
    results = load_results(path)
    table = results.per_case.to_frame()
    table.loc[table["test"] == "good", "V_test"] *= 1.5
    table["AVD"] = (table["V_ref"] - table["V_test"]).abs()
    metadata = run_metadata(N, "smoke")
    save_results(build_results(table, "good", ROLES, metadata, results.stats.config), path)
    problems = check_leaderboard(board / "results", board / "README.md")
    assert any("good__phantom__smoke.md differs" in p for p in problems)
    assert any("good__phantom__smoke__volumes__" in p and "missing" in p for p in problems)
    write_leaderboard(board / "results", board / "README.md")
    assert len(list((board / "figures").glob("good__phantom__smoke__volumes__*.png"))) == 1
    assert check_leaderboard(board / "results", board / "README.md") == []


def test_check_passes_then_catches_a_hand_edit(board: Path, cli, capsys) -> None:
    args = [
        "leaderboard",
        "--results-dir",
        str(board / "results"),
        "--out",
        str(board / "README.md"),
        "--check",
    ]
    assert check_leaderboard(board / "results", board / "README.md") == []
    assert cli(args) == 0
    readme = board / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8").replace("| 1 ", "| 2 ", 1))
    problems = check_leaderboard(board / "results", readme)
    assert problems == [f"{readme} differs from what {board / 'results'} gives"]
    capsys.readouterr()
    assert cli(args) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: leaderboard is stale:") and "\n" not in error


def test_check_catches_a_tampered_results_file(board: Path, cli, capsys) -> None:
    path = board / "results" / "good__phantom__demo.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw["stats"]["table2"]["metrics"][8]["median"] = 0.99  # SDT5
    path.write_text(json.dumps(raw))
    with pytest.raises(BenchError, match="good__phantom__demo.json: .*SDT5"):
        check_leaderboard(board / "results", board / "README.md")
    code = cli(
        [
            "leaderboard",
            "--results-dir",
            str(board / "results"),
            "--out",
            str(board / "README.md"),
            "--check",
        ]
    )
    error = capsys.readouterr().err.strip()
    assert code == 2 and "good__phantom__demo.json" in error and "\n" not in error


def test_stale_pages_are_reported_and_removed(board: Path) -> None:
    (board / "results" / "eroded__phantom__demo.json").unlink()
    problems = check_leaderboard(board / "results", board / "README.md")
    assert any("eroded__phantom__demo.md has no results file" in p for p in problems)
    write_leaderboard(board / "results", board / "README.md")
    assert not (board / "methods" / "eroded__phantom__demo.md").exists()
    assert not list((board / "figures").glob("eroded__*"))
    assert check_leaderboard(board / "results", board / "README.md") == []


def test_empty_and_missing_results(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    write_leaderboard(tmp_path / "results", tmp_path / "README.md")
    assert "No results yet" in (tmp_path / "README.md").read_text(encoding="utf-8")
    with pytest.raises(BenchError, match="results directory not found"):
        check_leaderboard(tmp_path / "absent", tmp_path / "README.md")


def test_duplicate_results_are_rejected(results_source: Path, tmp_path: Path) -> None:
    shutil.copytree(results_source, tmp_path / "results")
    shutil.copy(tmp_path / "results" / "good__phantom__demo.json", tmp_path / "results" / "x.json")
    with pytest.raises(BenchError, match="same method, dataset and profile"):
        check_leaderboard(tmp_path / "results", tmp_path / "README.md")


def test_a_method_without_a_defined_sdt5_is_listed_but_not_ranked(tmp_path: Path) -> None:
    """A model that predicts nothing has no SDT5 on any case: it gets no rank and no share."""
    for method, transform in (("good", noisy(2.0)), ("nothing", eroded_share(1.0))):
        table = make_per_case(N, method=method, method_from_a=transform, seed=1)
        results = build_results(
            table, method, ROLES, run_metadata(N, "demo"), StatsConfig(resamples=200)
        )
        save_results(results, tmp_path / "results" / f"{results.stem}.json")
    write_leaderboard(tmp_path / "results", tmp_path / "README.md")
    rows = [
        [cell.strip() for cell in line.split("|")[1:-1]]
        for line in (tmp_path / "README.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| ") and "](methods/" in line
    ]
    by_method = {row[1].split("]")[0].lstrip("["): row for row in rows}
    assert by_method["good"][0] == "1"
    assert by_method["nothing"][0] == "-" and by_method["nothing"][-1] == "-"  # rank kept
    for method, missed_all in (("nothing", True), ("good", False)):
        per_case = load_results(tmp_path / "results" / f"{method}__phantom__demo.json").per_case
        mine = per_case.to_frame().query("reference == 'A' and test == @method and V_ref > 0")
        lesions = len(mine)
        assert lesions > 0
        # Missed: every lesion for a model that predicts nothing, none for a noisy copy of A
        assert by_method[method][6] == f"{lesions if missed_all else 0} of {lesions}"
    text = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "Rank `-`: `nothing` has no SDT5 vs A on any case" in text and "`good`" not in text
