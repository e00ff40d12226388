"""Known answers of the bias and precision non-inferiority tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench.metric_names import BY_NAME, Direction
from bench.stats import Margin, RaterRoles, StatsConfig, StudyStats, Verdict, compute_study
from bench.stats.bootstrap import CaseBootstrap
from bench.stats.noninferiority import bias_test, oriented_difference, precision_test
from tests.stats.synthetic import eroded_share, identical, make_per_case

ROLES = RaterRoles("A", ("B", "C"))
OVERLAP = ("Dice", "VS", "Recall", "SDT5")


@pytest.fixture(scope="module")
def identical_study() -> StudyStats:
    return compute_study(make_per_case(100, method_from_a=identical, seed=1), "M", ROLES)


@pytest.fixture(scope="module")
def eroded_table() -> pd.DataFrame:
    return make_per_case(100, method_from_a=eroded_share(0.25), seed=1)


def test_a_method_identical_to_rater_a_passes_every_bias_test(identical_study) -> None:
    tests = [t for block in identical_study.table3 for t in block.bias]
    assert len(tests) == 2 * len(StatsConfig().tested_metrics)
    assert all(t.verdict is Verdict.NON_INFERIOR for t in tests), [
        (t.rater, t.metric, t.p_adjusted) for t in tests if t.verdict is not Verdict.NON_INFERIOR
    ]
    assert all(t.median_difference == 0 for t in tests)


def test_a_method_identical_to_rater_a_is_not_shown_more_precise(identical_study) -> None:
    """Margin 0 asks for evidence of a smaller SD: equal SDs are not that evidence."""
    for test in (t for block in identical_study.table3 for t in block.precision):
        assert test.sd_difference == 0 and test.ci_low == 0 and test.ci_high == 0
        assert test.verdict is Verdict.NOT_SHOWN


def test_a_eroded_method_fails_the_overlap_bias_tests(eroded_table) -> None:
    study = compute_study(eroded_table, "M", ROLES)
    for block in study.table3:
        drop = block.rater_vs_reference["Dice"].median - block.rater_vs_method["Dice"].median
        assert drop > 0.05, f"erosion should cost Dice against {block.rater}"
        failed = {t.metric for t in block.bias if t.verdict is Verdict.NOT_SHOWN}
        assert set(OVERLAP) <= failed, (block.rater, failed)
    b = study.comparison("B")
    assert b.rater_vs_reference["Dice"].median - b.rater_vs_method["Dice"].median == (
        pytest.approx(0.2, abs=0.06)
    )


def test_oriented_difference_flips_lower_is_better() -> None:
    rater, method = np.array([0.6, 5.0]), np.array([0.7, 3.0])
    assert oriented_difference("Dice", rater, method).tolist() == pytest.approx([0.1, -2.0])
    assert oriented_difference("HD95", rater, method).tolist() == pytest.approx([-0.1, 2.0])
    for name in ("AVD", "ASD", "HD95"):
        assert BY_NAME[name].direction is Direction.LOWER_IS_BETTER
    with pytest.raises(ValueError):
        oriented_difference("V_ref", rater, method)


def test_bias_p_value_is_scipys_wilcoxon_on_d_plus_margin() -> None:
    rng = np.random.default_rng(4)
    rater = rng.uniform(0.4, 0.9, 80)
    method = rater + rng.normal(-0.03, 0.05, 80)
    method[:5] = np.nan  # dropped pairs
    test = bias_test("B", "Dice", rater, method, Margin(0.05))
    keep = ~np.isnan(method)
    expected = stats.wilcoxon(method[keep] - rater[keep] + 0.05, alternative="greater")
    assert test.n == 75
    assert test.statistic == pytest.approx(expected.statistic)
    assert test.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    lower = bias_test("B", "HD95", rater * 10, method * 10, Margin(2.0))
    expected = stats.wilcoxon(rater[keep] * 10 - method[keep] * 10 + 2.0, alternative="greater")
    assert lower.p_value == pytest.approx(expected.pvalue, rel=1e-9)


def test_relative_margin_scales_with_the_raters_median() -> None:
    assert Margin(0.2, relative=True).resolve(0.6) == pytest.approx(0.12)
    assert Margin(3.0).resolve(100.0) == 3.0
    rater = np.array([0.5, 0.6, 0.7, np.nan, 0.8])
    method = np.array([0.5, 0.6, 0.7, 0.9, np.nan])
    test = bias_test("B", "Dice", rater, method, Margin(0.2, relative=True))
    assert test.margin == pytest.approx(0.2 * 0.6)  # median over the 3 complete pairs


def test_revised_config_reports_resolved_margins() -> None:
    table = make_per_case(60, method_from_a=identical, seed=2)
    study = compute_study(table, "M", ROLES, StatsConfig.revised())
    block = study.comparison("B")
    dice = next(t for t in block.bias if t.metric == "Dice")
    assert dice.margin == pytest.approx(0.2 * block.rater_vs_reference["Dice"].median)
    assert next(t for t in block.bias if t.metric == "HD95").margin == 3.0
    assert next(t for t in block.bias if t.metric == "AVD").margin == 3.0


def _precision(rater_sd: float, method_sd: float, margin: float = 0.0):
    rng = np.random.default_rng(0)
    rater = rng.normal(0.7, rater_sd, 150)
    method = rng.normal(0.7, method_sd, 150)
    boot = CaseBootstrap(150, 1000, seed=3)
    sds = boot.sds(np.stack([rater, method]))
    return precision_test("B", "Dice", rater, method, sds[0], sds[1], Margin(margin), 0.90), sds


def test_precision_shown_for_a_clearly_less_variable_method() -> None:
    test, sds = _precision(rater_sd=0.15, method_sd=0.05)
    assert test.ci_high < 0 and test.p_value < 0.01 and test.ranksum_p < 0.01
    exceed = int((sds[1] - sds[0] >= 0).sum())
    assert test.p_value == pytest.approx((1 + exceed) / 1001)
    expected = stats.mannwhitneyu(sds[0], sds[1], alternative="greater")
    assert test.ranksum_statistic == pytest.approx(expected.statistic)
    assert test.ranksum_p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_precision_not_shown_for_a_more_variable_method() -> None:
    test, _ = _precision(rater_sd=0.05, method_sd=0.15)
    assert test.ci_low > 0 and test.p_value > 0.5


def test_precision_margin_allows_a_slightly_larger_sd() -> None:
    strict, _ = _precision(rater_sd=0.10, method_sd=0.105)
    lenient, _ = _precision(rater_sd=0.10, method_sd=0.105, margin=0.05)
    assert strict.p_value > 0.05
    assert lenient.p_value < 0.01 and lenient.ci_high < 0.05


def test_equal_sds_are_on_the_precision_margin() -> None:
    """A method = rater + a constant has the rater's SD in every resample: the bootstrap SD
    differences are rounding noise (about 1e-15) and must not decide p (it was 0.41-1.00)."""
    rng = np.random.default_rng(3)
    rater = rng.gamma(2.0, 3.0, 60)
    method = rater + 0.7
    for seed in range(3):
        boot = CaseBootstrap(60, resamples=500, seed=seed)
        sds = boot.sds(np.stack([rater, method]))
        assert np.any(sds[1] != sds[0])  # the rounding noise the test is about
        test = precision_test("B", "ASD", rater, method, sds[0], sds[1], Margin(0.0), 0.9)
        assert test.p_value == 1.0
        assert test.ci_low == 0.0 or abs(test.ci_low) < 1e-14
        shifted = precision_test("B", "ASD", rater, method, sds[0], sds[1], Margin(0.5), 0.9)
        assert shifted.p_value == 1 / 501  # below a positive margin in every resample
