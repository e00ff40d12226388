"""Table 3's image level: bootstrap CIs and non-inferiority tests, against known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.evaluate.image_level import image_level
from bench.stats import RaterRoles, StatsConfig, Verdict, compute_study
from bench.stats.bootstrap import CaseBootstrap
from bench.stats.config import Margin
from bench.stats.image_level import (
    FIGURES,
    PairVolumes,
    case_values,
    difference_test,
    figure_resamples,
)
from bench.stats.tables import study_report
from tests.stats.synthetic import identical, make_per_case, noisy

ROLES = RaterRoles("A", ("B", "C"))


def test_figures_in_each_resample_are_the_figures_of_the_resampled_cases() -> None:
    rng = np.random.default_rng(4)
    reference = np.round(rng.gamma(2.0, 12.0, 50))  # rounded: ties in the AUC's scores
    test = np.round(reference * rng.uniform(0.5, 1.5, 50))
    reference[3], test[7] = np.nan, np.nan  # no row for these pairs: left out
    boot = CaseBootstrap(50, resamples=40, seed=5)
    replicates = figure_resamples(PairVolumes(reference, test), boot, 20.0)
    for r in range(boot.resamples):
        drawn = boot.indices[r]
        level = image_level("E", "X", reference[drawn], test[drawn], np.ones(50), None, 20.0)
        expected = [level.sensitivity, level.specificity, level.auc]
        assert replicates[:, r].tolist() == pytest.approx(expected, rel=0, abs=0, nan_ok=True)


def test_case_values_average_to_the_figures() -> None:
    # Positives (>= 20 ml): 30, 25, 20 with test volumes 28, 10, 21; negatives: 5, 0, 19.9
    # with test volumes 22, 1, 3. Placements of the positives among the negatives (22, 1, 3):
    # 28 -> 3/3, 10 -> 2/3, 21 -> 2/3.
    reference = np.array([30.0, 25.0, 5.0, 0.0, 19.9, 20.0])
    test = np.array([28.0, 10.0, 22.0, 1.0, 3.0, 21.0])
    values = case_values(PairVolumes(reference, test), 20.0)
    nan = math.nan
    assert values[0].tolist() == pytest.approx([1, 0, nan, nan, nan, 1], nan_ok=True)
    assert values[1].tolist() == pytest.approx([nan, nan, 0, 1, 1, nan], nan_ok=True)
    assert values[2].tolist() == pytest.approx([1, 2 / 3, nan, nan, nan, 2 / 3], nan_ok=True)
    level = image_level("E", "X", reference, test, np.ones(6), None, 20.0)
    for j, figure in enumerate(FIGURES):
        assert np.nanmean(values[j]) == pytest.approx(getattr(level, figure))


def test_difference_test_counts_resamples_on_the_h0_side() -> None:
    rater = np.full(9, 0.8)
    method = np.array([0.9, 0.8, 0.8, 0.78, 0.76, 0.75, 0.70, np.nan, 0.6])
    # Differences (8 usable): 0.1, 0, 0, -0.02, -0.04, -0.05, -0.1, -0.2; margin 0.05:
    # at or below -0.05 are -0.05 (on the margin, within rounding), -0.1 and -0.2.
    p, low, high = difference_test(rater, method, 0.05, 0.9)
    assert p == (1 + 3) / (1 + 8)
    assert low <= -0.1 and high >= 0.0
    # Exactly on the margin in every resample (0.25 - 0.3 + 0.05 is 2.8e-17 in floating point).
    p_on, _, _ = difference_test(np.full(5, 0.3), np.full(5, 0.25), 0.05, 0.9)
    assert p_on == 1.0
    assert math.isnan(difference_test(rater, method, math.nan, 0.9)[0])


def test_a_method_equal_to_the_reference_rater() -> None:
    """M = A: every difference is 0, so bias is shown (p = 1/(R+1)) and, with the paper's
    precision margin 0, precision is on the margin in every resample (p = 1)."""
    table = make_per_case(60, method_from_a=identical, seed=3)
    config = StatsConfig(resamples=200)
    study = compute_study(table, "M", ROLES, config)
    for block in study.table3:
        assert [t.figure for t in block.image_level_tests] == list(FIGURES)
        for test in block.image_level_tests:
            assert test.rater_value == test.method_value
            assert (test.rater_ci_low, test.rater_ci_high) == (
                test.method_ci_low,
                test.method_ci_high,
            )
            if math.isnan(test.rater_value):
                assert test.verdict is Verdict.NOT_TESTED
                continue
            assert test.difference == 0.0 and test.margin == 0.05
            assert test.p_value == 1 / 201
            assert test.verdict is Verdict.NON_INFERIOR
            assert test.precision.p_value == 1.0
            assert test.precision.verdict is Verdict.NOT_SHOWN


def test_a_method_that_misses_large_lesions_is_not_shown() -> None:
    """M = A shrunk to 60% of its radius: most large lesions fall below 20 ml."""
    table = make_per_case(60, method_from_a=lambda a, _rng: 0.6 * a, seed=3)
    study = compute_study(table, "M", ROLES, StatsConfig(resamples=200))
    sensitivity = study.comparison("B").image_level_tests[0]
    assert sensitivity.figure == "sensitivity"
    assert sensitivity.method_value < sensitivity.rater_value - 0.5
    assert sensitivity.p_value == 1.0  # no resample comes near the margin
    assert sensitivity.verdict is Verdict.NOT_SHOWN
    assert sensitivity.difference_ci_high < -0.05


def test_image_level_tests_are_their_own_holm_family() -> None:
    table = make_per_case(60, method_from_a=noisy(3.0), seed=2)
    config = StatsConfig(resamples=200)
    study = compute_study(table, "M", ROLES, config)
    tests = [t for block in study.table3 for t in block.image_level_tests]
    raw = sorted(t.p_value for t in tests if not math.isnan(t.p_value))
    smallest = min(tests, key=lambda t: t.p_value if not math.isnan(t.p_value) else 2)
    assert smallest.p_adjusted == pytest.approx(min(1.0, len(raw) * raw[0]))
    # The metrics' tests are adjusted among themselves only, as before.
    bias = [t for block in study.table3 for t in block.bias]
    first = min(bias, key=lambda t: t.p_value)
    assert first.p_adjusted == pytest.approx(min(1.0, len(bias) * first.p_value))
    report = study_report(study, "M", "A")
    assert "Table 3: image level, M against rater B" in report
    assert "Sensitivity" in report and "AUC" in report


def test_relative_margin_resolves_against_the_rater_figure() -> None:
    table = make_per_case(60, method_from_a=noisy(3.0), seed=2)
    study = compute_study(table, "M", ROLES, StatsConfig.revised(resamples=50))
    for test in study.comparison("C").image_level_tests:
        if not math.isnan(test.rater_value):
            assert test.margin == pytest.approx(0.2 * test.rater_value)


def test_precision_margin_applies_to_the_image_level_precision_test() -> None:
    table = make_per_case(60, method_from_a=identical, seed=3)
    config = StatsConfig(resamples=100, precision_margin=Margin(0.01))
    study = compute_study(table, "M", ROLES, config)
    for test in study.comparison("B").image_level_tests:
        if test.precision.n > 1 and test.precision.sd_rater > 0:
            assert test.precision.p_value == 1 / 101  # SD difference 0 < margin every time
