"""`bench stats`: tables in the terminal, roles from the table or a dataset, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

import bench.cli
from tests.factories import write_tiny_dataset
from tests.stats.synthetic import make_per_case, noisy


@pytest.fixture
def cli():
    return bench.cli.main


@pytest.fixture
def metrics_csv(tmp_path: Path) -> Path:
    path = tmp_path / "metrics.csv"
    make_per_case(30, method="net", method_from_a=noisy(2.0), seed=4).to_csv(path, index=False)
    return path


def test_prints_table2_and_table3(cli, metrics_csv: Path, capsys) -> None:
    code = cli(["stats", "--metrics", str(metrics_csv), "--method", "net", "--resamples", "200"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Table 2: net against reference rater A" in out
    assert "Table 3: bias, net against rater B" in out
    assert "Table 3: precision, net against rater C" in out
    assert "Image level at 20 ml" in out


def test_explicit_roles_and_revised_margins(cli, metrics_csv: Path, capsys) -> None:
    args = [
        "stats",
        "--metrics",
        str(metrics_csv),
        "--method",
        "net",
        "--reference",
        "B",
        "--raters",
        "C",
        "--margins",
        "revised",
        "--resamples",
        "100",
    ]
    assert cli(args) == 0
    out = capsys.readouterr().out
    assert "Table 2: net against reference rater B" in out
    assert "against rater C" in out and "against rater A" not in out
    assert "unit_interval 20%" in out


def test_roles_from_a_dataset(cli, metrics_csv: Path, tmp_path: Path, capsys) -> None:
    dataset = write_tiny_dataset(tmp_path / "tiny", n_patients=2, second_scans=())
    args = [
        "stats",
        "--metrics",
        str(metrics_csv),
        "--method",
        "net",
        "--dataset",
        str(dataset.root),
        "--resamples",
        "100",
    ]
    assert cli(args) == 0
    assert "reference A, independent B, C" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "nope"], "method 'nope' is not a test"),
        (["--method", "net", "--reference", "Z"], "reference rater 'Z'"),
        (["--method", "net", "--alpha", "3"], "alpha must be in"),
    ],
)
def test_errors_are_one_line_and_exit_2(cli, metrics_csv: Path, capsys, extra, message) -> None:
    assert cli(["stats", "--metrics", str(metrics_csv), *extra]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error


def test_missing_file(cli, tmp_path: Path, capsys) -> None:
    assert cli(["stats", "--metrics", str(tmp_path / "none.csv"), "--method", "x"]) == 2
    assert "per-case metrics file not found" in capsys.readouterr().err
