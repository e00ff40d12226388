"""Paired comparison of methods: Wilcoxon p-values, Holm and effect sizes worked out by hand
(exact signed-rank null distributions counted on paper) and checked against scipy."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench.stats.paired import (
    CompareConfig,
    all_pairs,
    compare_methods,
    reference_scores,
    wilcoxon_two_sided,
)


@pytest.mark.parametrize(
    ("d", "w_plus", "p"),
    [
        # n = 5, all positive: W+ = 15 is the one subset of 32 at the top; two-sided 2/32.
        ([1, 2, 3, 4, 5], 15, 2 / 32),
        # n = 6, the smallest |d| negative: W+ = 20; W+ >= 20 for {} and {1} left out of the
        # positive ranks, 2 of 64 sign patterns; two-sided 4/64.
        ([-0.5, 1, 2, 3, 4, 5], 20, 4 / 64),
        # n = 5, rank 2 negative: W+ = 13; the complement sums to <= 2 for {}, {1}, {2}: 3/32.
        ([1, -2, 3, 4, 5], 13, 6 / 32),
        # n = 4: W+ = 4; W+ <= 4 for {}, {1}, {2}, {3}, {4}, {1,2}, {1,3}: 7/16, doubled.
        ([1, -2, 3, -4], 4, 14 / 16),
        # W+ = W- = 5 at the centre: both tails are 9/16, twice that is capped at 1.
        ([1, -2, -3, 4], 5, 1.0),
    ],
)
def test_exact_signed_rank_by_hand(d: list[float], w_plus: float, p: float) -> None:
    statistic, p_value = wilcoxon_two_sided(np.array(d, dtype=float))
    assert statistic == w_plus
    assert p_value == pytest.approx(p, rel=1e-12)


def test_normal_approximation_by_hand() -> None:
    """n = 60 > 50: z = (W+ - n(n+1)/4) / sqrt(n(n+1)(2n+1)/24), p = 2 Phi(-|z|)."""
    d = np.arange(1, 61, dtype=float)
    n = 60
    z = (n * (n + 1) / 2 - n * (n + 1) / 4) / math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
    statistic, p_value = wilcoxon_two_sided(d)
    assert statistic == 1830
    assert p_value == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-9)


def test_no_difference_at_all_gives_no_evidence() -> None:
    assert wilcoxon_two_sided(np.zeros(7)) == (0.0, 1.0)
    assert all(math.isnan(v) for v in wilcoxon_two_sided(np.array([])))


def _vectors() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    out = []
    for n in (4, 9, 14, 30, 50, 51, 120):  # scipy: 2.4 s per call at n 13 with ties
        out.append(rng.normal(0.3, 1, n))  # exact (n <= 50) or normal
        out.append(np.round(rng.normal(0.3, 1, n), 1))  # ties: sign flips (n <= 13) or normal
        zeros = rng.normal(-0.2, 1, n)
        zeros[: n // 3] = 0.0
        out.append(zeros)
    return out


@pytest.mark.parametrize("d", _vectors(), ids=lambda d: f"n{d.size}")
def test_matches_scipy_two_sided(d: np.ndarray) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = stats.wilcoxon(d)  # two-sided, method "auto"
    w_plus, p_value = wilcoxon_two_sided(d)
    nonzero = d[d != 0]
    ranks = stats.rankdata(np.abs(nonzero))
    assert w_plus == pytest.approx(ranks[nonzero > 0].sum())
    assert min(w_plus, ranks.sum() - w_plus) == pytest.approx(expected.statistic)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-9)


def _scores(sdt5: list[float], dice: list[float], first_case: int = 0) -> pd.DataFrame:
    cases = [f"c{first_case + i}" for i in range(len(sdt5))]
    return pd.DataFrame({"SDT5": sdt5, "Dice": dice}, index=cases, dtype=float)


BASE = [0.30, 0.42, 0.51, 0.26, 0.64, 0.35, 0.58, 0.47]


def _shifted(d: list[float]) -> list[float]:
    return [b + x for b, x in zip(BASE, d, strict=False)]


def test_known_comparisons_holm_and_effect_sizes() -> None:
    """Two pairs, two metrics: four p-values counted by hand, then Holm over the four.

    x vs y, SDT5: x has NaN on c0 and y was not scored on c7, so 7 shared cases, 6 used, with
    d = (-0.5, 1, 2, 3, 4, 5) / 100: p = 4/64. Dice: d = (1..6) / 100 on the same six: 2/64.
    u vs v, SDT5: seven positive d: 2/128. Dice: d = (1, -2, 3, 4, 5) / 100: 6/32.
    Holm, m = 4: sorted 2/128, 2/64, 4/64, 6/32 times 4, 3, 2, 1 = 0.0625, 0.09375, 0.125,
    0.1875, already increasing.
    """
    d_sdt5 = [0.0, -0.005, 0.01, 0.02, 0.03, 0.04, 0.05]
    d_dice = [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06]
    y = _scores(BASE[:7], BASE[:7])
    x = _scores([math.nan, *_shifted(d_sdt5)[1:], 0.9], [*_shifted(d_dice), 0.1])
    nan2 = [math.nan, math.nan]
    u = _scores(
        _shifted([0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07]),
        _shifted([0.01, -0.02, 0.03, 0.04, 0.05]) + nan2,
    )
    v = _scores(BASE[:7], BASE[:5] + nan2)
    scores = {"x": x, "y": y, "u": u, "v": v}
    config = CompareConfig(resamples=500, seed=3)
    xy_sdt5, xy_dice, uv_sdt5, uv_dice = compare_methods(scores, [("x", "y"), ("u", "v")], config)

    assert (xy_sdt5.shared, xy_sdt5.n, xy_sdt5.dropped) == (7, 6, 1)
    assert (xy_dice.shared, xy_dice.n) == (7, 7)  # Dice is defined on c0: d = 0 there
    assert (uv_sdt5.n, uv_dice.n) == (7, 5)
    assert xy_sdt5.p_value == pytest.approx(4 / 64)
    assert xy_dice.p_value == pytest.approx(2 / 64)  # the zero on c0 is dropped by the test
    assert uv_sdt5.p_value == pytest.approx(2 / 128)
    assert uv_dice.p_value == pytest.approx(6 / 32)
    adjusted = [t.p_adjusted for t in (uv_sdt5, xy_dice, xy_sdt5, uv_dice)]
    assert adjusted == pytest.approx([0.0625, 0.09375, 0.125, 0.1875])

    assert xy_sdt5.median_difference == pytest.approx(0.025)  # (0.02 + 0.03) / 2
    assert xy_dice.median_difference == pytest.approx(0.03)
    assert uv_dice.median_difference == pytest.approx(0.03)
    assert xy_sdt5.favours() == "x" and not xy_sdt5.significant(0.05)

    # The CI: percentiles of the medians of R case resamples drawn as the study draws them
    # (numpy's generator seeded with the config's seed, R x n indices).
    d = np.array(d_sdt5[1:])
    rng = np.random.default_rng(3)
    medians = np.median(d[rng.integers(0, d.size, size=(500, d.size))], axis=1)
    low, high = np.percentile(medians, [2.5, 97.5])
    assert (xy_sdt5.ci_low, xy_sdt5.ci_high) == pytest.approx((low, high), abs=1e-12)


def test_a_metric_undefined_everywhere_is_not_tested_and_leaves_the_family() -> None:
    """No usable case: NaN p, and Holm counts only the other test (m = 1: p unchanged)."""
    first = _scores(_shifted([0.01, 0.02, 0.03, 0.04, 0.05]), [math.nan] * 5)
    second = _scores(BASE[:5], BASE[:5])
    sdt5, dice = compare_methods({"a": first, "b": second}, [("a", "b")])
    assert dice.n == 0 and math.isnan(dice.p_value) and math.isnan(dice.p_adjusted)
    assert math.isnan(dice.median_difference) and math.isnan(dice.ci_low)
    assert sdt5.p_adjusted == sdt5.p_value == pytest.approx(2 / 32)


def test_lower_is_better_metrics_favour_the_smaller_value() -> None:
    first = pd.DataFrame({"HD95": [5.0, 6.0, 7.0]}, index=["c0", "c1", "c2"])
    second = pd.DataFrame({"HD95": [9.0, 9.5, 12.0]}, index=["c0", "c1", "c2"])
    (test,) = compare_methods(
        {"a": first, "b": second}, [("a", "b")], CompareConfig(metrics=("HD95",))
    )
    assert test.median_difference == pytest.approx(-4.0) and test.favours() == "a"


def test_reference_scores_pick_the_method_against_the_reference() -> None:
    table = pd.DataFrame(
        {
            "case": ["c1", "c0", "c0", "c0"],
            "reference": ["A", "A", "B", "A"],
            "test": ["m", "m", "m", "n"],
            "SDT5": [0.5, 0.25, 0.9, 0.1],
            "Dice": [0.4, 0.2, 0.8, 0.1],
        }
    )
    scores = reference_scores(table, "A", "m", ("SDT5",))
    assert list(scores.index) == ["c0", "c1"] and list(scores["SDT5"]) == [0.25, 0.5]


def test_pairs_and_config() -> None:
    assert all_pairs(["a", "b", "c"]) == [("a", "b"), ("a", "c"), ("b", "c")]
    with pytest.raises(ValueError, match="V_ref has no better direction"):
        CompareConfig(metrics=("V_ref",))
    with pytest.raises(ValueError, match="unknown metric 'SDT7'"):
        CompareConfig(metrics=("SDT7",))
