"""`bench compare`: paired tests between published methods, and one error line for bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench.cli import main
from bench.results import build_results, load_results, save_results
from bench.stats import RaterRoles, StatsConfig
from bench.stats.tables import fmt_p
from tests.stats.synthetic import eroded_share, identical, make_per_case, run_metadata

N = 30
ROLES = RaterRoles("A", ("B", "C"))


def _wobble(a: np.ndarray, _rng: np.random.Generator) -> np.ndarray:
    """Rater A shrunk by 0 to 60%, a share that varies from case to case (no random draw)."""
    return a * (1 - 0.3 * (1 + np.sin(a.sum())))


METHODS = {"copy": identical, "shrink30": eroded_share(0.30), "shrink35": eroded_share(0.35)}
METHODS["wobble"] = _wobble


def _write(folder: Path, method: str, profile: str = "demo", rename: str = "") -> None:
    table = make_per_case(N, method=method, method_from_a=METHODS[method], seed=4)
    metadata = run_metadata(N, profile)
    if rename:  # the same cases under other names: nothing shared with the others
        table["case"] = rename + table["case"]
        metadata["prediction_sha256"] = {
            rename + c: h for c, h in metadata["prediction_sha256"].items()
        }
    results = build_results(table, method, ROLES, metadata, StatsConfig(resamples=50))
    save_results(results, folder / f"{results.stem}.json")


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("compare") / "results"
    for method in METHODS:
        _write(folder, method)
    _write(folder, "copy", profile="smoke")
    _write(folder, "shrink30", profile="smoke")
    return folder


def _differences(folder: Path, first: str, second: str, metric: str) -> pd.Series:
    """d per case straight from the two results files (the oracle's own reading)."""
    columns = {}
    for method in (first, second):
        table = load_results(folder / f"{method}__phantom__demo.json").per_case.to_frame()
        rows = table[(table["reference"] == "A") & (table["test"] == method)]
        columns[method] = rows.set_index("case")[metric]
    both = pd.DataFrame(columns).dropna()
    return both[first] - both[second]


def _scipy_p(d: pd.Series) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.wilcoxon(d.to_numpy()).pvalue)


def test_three_methods_every_pair_holm_over_six(results_dir: Path, capsys) -> None:
    argv = ["compare", "--methods", "shrink30", "wobble", "copy", "--profile", "demo"]
    assert main([*argv, "--results-dir", str(results_dir)]) == 0
    out = capsys.readouterr().out
    assert "profile demo, reference A" in out and "Holm over 6 tests" in out
    lines = [line for line in out.splitlines() if line.startswith(("shrink30 -", "wobble -"))]
    rows = [[cell.strip() for cell in line.split("  ") if cell.strip()] for line in lines]
    pairs = [("shrink30", "wobble"), ("shrink30", "copy"), ("wobble", "copy")]
    assert [row[:2] for row in rows] == [
        [f"{a} - {b}", metric] for a, b in pairs for metric in ("SDT5", "Dice")
    ]
    d = {
        (a, b, metric): _differences(results_dir, a, b, metric)
        for a, b in pairs
        for metric in ("SDT5", "Dice")
    }
    p = {key: _scipy_p(values) for key, values in d.items()}
    for row, key in zip(rows, d, strict=True):
        assert row[2] == f"{len(d[key])} of {N}"
        assert row[5].startswith(f"{fmt_p(p[key])} (")
        median = d[key].median()
        assert row[3].startswith(f"{'+' if median > 0 else ''}{median:.3f} [")
    # Holm by hand: the four comparisons with `copy` have p far below the first two, so the
    # first (the 5th smallest of 6) is multiplied by 2 and the second (the largest) by 1.
    first, second = p[("shrink30", "wobble", "SDT5")], p[("shrink30", "wobble", "Dice")]
    others = [v for k, v in p.items() if k[1] == "copy"]
    assert 6 * max(others) < 2 * first < second < 1
    assert rows[0][5] == f"{fmt_p(first)} ({fmt_p(2 * first)})"
    assert rows[1][5] == f"{fmt_p(second)} ({fmt_p(second)})"
    assert rows[0][6] == "no difference shown"
    assert rows[2][6] == "copy better"  # a copy of rater A keeps all of its surface


def test_the_profile_must_be_chosen_when_a_method_has_two(results_dir: Path, capsys) -> None:
    code = main(["compare", "--methods", "copy", "shrink30", "--results-dir", str(results_dir)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert err == (
        f"error: {results_dir}: method copy has results for phantom/demo, phantom/smoke; "
        "choose with --dataset and --profile"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--methods", "copy", "nope", "--profile", "demo"], "unknown method nope: no results"),
        (["--methods", "copy", "shrink35", "--profile", "smoke"], "unknown method shrink35"),
        (["--methods", "copy"], "compare needs at least two methods"),
        (["--methods", "copy", "copy"], "method copy is named twice"),
        (["--methods", "copy", "shrink30", "--metrics", "V_ref"], "V_ref has no better"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    results_dir: Path, capsys, argv: list[str], message: str
) -> None:
    assert main(["compare", *argv, "--results-dir", str(results_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err


def test_different_profiles_and_no_shared_cases(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "results"
    _write(folder, "copy", profile="demo")
    _write(folder, "shrink30", profile="smoke")
    _write(folder, "shrink35", profile="demo", rename="x")
    assert main(["compare", "--methods", "copy", "shrink30", "--results-dir", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert "different datasets or profiles" in err and "shrink30 on phantom" in err
    assert "\n" not in err
    assert main(["compare", "--methods", "copy", "shrink35", "--results-dir", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {folder}: copy and shrink35 share no case: their results files " + (
        "score different cases"
    )
