"""The whole protocol on synthetic per-case tables: structure, numbers, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench.errors import InputError
from bench.metric_names import METRIC_NAMES, PER_CASE_COLUMNS
from bench.stats import RaterRoles, StatsConfig, StudyStats, compute_study
from bench.stats.config import HolmFamily
from bench.stats.multiplicity import holm
from bench.stats.per_case import read_per_case_csv, validate_per_case
from tests.stats.synthetic import make_per_case, noisy

ROLES = RaterRoles("A", ("B", "C"), "truth")


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    table = make_per_case(80, method_from_a=noisy(3.0), truth=True, seed=11)
    return table


@pytest.fixture(scope="module")
def study(table: pd.DataFrame) -> StudyStats:
    return compute_study(table, "M", ROLES, StatsConfig(resamples=500))


def _series(table: pd.DataFrame, reference: str, test: str, metric: str) -> pd.Series:
    rows = table[(table["reference"] == reference) & (table["test"] == test)]
    return rows.set_index("case")[metric]


def test_table2_medians_and_n_are_pandas_medians(table, study) -> None:
    assert (study.table2.reference, study.table2.test) == ("A", "M")
    assert [s.metric for s in study.table2.metrics] == list(METRIC_NAMES)
    for summary in study.table2.metrics:
        series = _series(table, "A", "M", summary.metric)
        assert summary.n == series.notna().sum()
        assert summary.median == pytest.approx(series.median(), nan_ok=True)
        assert summary.half_width == pytest.approx((summary.ci_high - summary.ci_low) / 2)


def test_table3_pairs_and_shapiro(table, study) -> None:
    assert [b.rater for b in study.table3] == ["B", "C"]
    block = study.comparison("C")
    assert (block.rater_vs_reference.reference, block.rater_vs_reference.test) == ("C", "A")
    assert (block.rater_vs_method.reference, block.rater_vs_method.test) == ("C", "M")
    dice = _series(table, "C", "A", "Dice").dropna().to_numpy()
    expected = stats.shapiro(dice)
    assert block.rater_vs_reference["Dice"].shapiro_w == pytest.approx(expected.statistic)
    assert block.rater_vs_reference["Dice"].shapiro_p == pytest.approx(expected.pvalue)
    assert [t.metric for t in block.bias] == list(StatsConfig().tested_metrics)


def test_ci_brackets_the_median_for_continuous_metrics(study) -> None:
    for pair in study.summaries():
        for name in ("Dice", "ASD", "HD95", "V_test"):
            s = pair[name]
            assert s.ci_low <= s.median <= s.ci_high


def test_bootstrap_cis_are_reproducible_by_seed(table) -> None:
    def cis(seed: int) -> list[float]:
        study = compute_study(table, "M", ROLES, StatsConfig(resamples=200, seed=seed))
        return [s.ci_low for p in study.summaries() for s in p.metrics]

    np.testing.assert_array_equal(cis(5), cis(5))
    assert not np.allclose(cis(5), cis(6), equal_nan=True)


def test_holm_over_all_raters_and_per_rater(table, study) -> None:
    bias = [t for b in study.table3 for t in b.bias]
    np.testing.assert_allclose([t.p_adjusted for t in bias], holm([t.p_value for t in bias]))
    per_rater = compute_study(
        table, "M", ROLES, StatsConfig(resamples=200, holm_family=HolmFamily.PER_RATER)
    )
    for block in per_rater.table3:
        raw = [t.p_value for t in block.bias]
        np.testing.assert_allclose([t.p_adjusted for t in block.bias], holm(raw))


def test_truth_summary_scores_every_rater_and_the_method(table, study) -> None:
    assert [(p.reference, p.test) for p in study.truth] == [
        ("truth", "A"),
        ("truth", "B"),
        ("truth", "C"),
        ("truth", "M"),
    ]
    expected = _series(table, "truth", "B", "Dice").median()
    assert study.truth[1]["Dice"].median == pytest.approx(expected)
    without = compute_study(table, "M", RaterRoles("A", ("B", "C")), StatsConfig(resamples=50))
    assert without.truth == ()


def test_nan_pairs_are_dropped_from_tests(table) -> None:
    damaged = table.copy()
    rows = (damaged["reference"] == "B") & (damaged["test"] == "M") & damaged["Dice"].notna()
    damaged.loc[damaged.index[rows][:7], "Dice"] = np.nan
    study = compute_study(damaged, "M", ROLES, StatsConfig(resamples=100))
    before = compute_study(table, "M", ROLES, StatsConfig(resamples=100))
    dice = next(t for t in study.comparison("B").bias if t.metric == "Dice")
    dice_before = next(t for t in before.comparison("B").bias if t.metric == "Dice")
    assert dice.n == dice_before.n - 7
    precision = next(t for t in study.comparison("B").precision if t.metric == "Dice")
    assert precision.n == dice.n


def test_missing_pair_is_one_clear_error(table) -> None:
    without_c = table[~((table["reference"] == "C") & (table["test"] == "M"))]
    with pytest.raises(InputError, match=r"no rows for \(reference, test\) \(C, M\)"):
        compute_study(without_c, "M", ROLES)


def test_bad_tables_are_rejected(table, tmp_path) -> None:
    with pytest.raises(InputError, match="missing per-case columns HD95"):
        validate_per_case(table.drop(columns="HD95"))
    with pytest.raises(InputError, match="duplicate row"):
        validate_per_case(pd.concat([table, table.iloc[:1]]))
    bad = table.astype({"Dice": object})
    bad.loc[bad.index[3], "Dice"] = "high"
    with pytest.raises(InputError, match="non-number 'high'"):
        validate_per_case(bad)
    with pytest.raises(InputError, match="not found"):
        read_per_case_csv(tmp_path / "absent.csv")
    path = tmp_path / "metrics.csv"
    table.to_csv(path, index=False)
    assert list(read_per_case_csv(path).columns) == list(PER_CASE_COLUMNS)


def test_roles_from_the_table(table) -> None:
    roles = RaterRoles.from_table(table, "M")
    assert roles == RaterRoles("A", ("B", "C"), "truth")
    assert RaterRoles.from_table(table, "M", reference="B").independent == ("A", "C")
    with pytest.raises(InputError, match="method 'X' is not a test"):
        RaterRoles.from_table(table, "X")
    with pytest.raises(InputError, match="reference rater 'Z'"):
        RaterRoles.from_table(table, "M", reference="Z")
    with pytest.raises(InputError, match="repeat"):
        RaterRoles("A", ("A", "B"))
