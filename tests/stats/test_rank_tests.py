"""Our one-sided rank tests give scipy's statistic and p-value on the same vectors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from bench.stats.rank_tests import mannwhitney_greater, signed_rank_statistic, wilcoxon_greater


def _vectors(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for n in (5, 8, 30, 50, 51, 80, 200):
        out.append(rng.normal(0.2, 1, n))  # continuous
        out.append(np.round(rng.normal(0.2, 1, n), 1))  # ties
        with_zeros = rng.normal(0.1, 1, n)
        with_zeros[: n // 4] = 0.0  # zero differences
        out.append(with_zeros)
    return out


@pytest.mark.parametrize("d", _vectors(0), ids=lambda d: f"n{d.size}")
def test_wilcoxon_matches_scipy(d: np.ndarray) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = stats.wilcoxon(d, alternative="greater")
    statistic, p = wilcoxon_greater(d)
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert signed_rank_statistic(d) == pytest.approx(expected.statistic, rel=1e-12)


@pytest.mark.parametrize("sizes", [(3, 4), (8, 8), (9, 30), (1000, 1000), (200, 150)])
@pytest.mark.parametrize("rounded", [False, True])
def test_mannwhitney_matches_scipy(sizes: tuple[int, int], rounded: bool) -> None:
    rng = np.random.default_rng(sum(sizes))
    x, y = rng.normal(0.1, 1, sizes[0]), rng.normal(0, 1, sizes[1])
    if rounded:
        x, y = np.round(x, 1), np.round(y, 1)
    expected = stats.mannwhitneyu(x, y, alternative="greater")
    statistic, p = mannwhitney_greater(x, y)
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_all_tied_samples_give_no_evidence() -> None:
    assert mannwhitney_greater(np.ones(100), np.ones(100))[1] == 1.0
    assert np.isnan(wilcoxon_greater(np.array([]))[1])
