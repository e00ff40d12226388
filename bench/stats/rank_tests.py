"""One-sided rank tests that give scipy's answers without scipy's per-call overhead.

`scipy.stats.wilcoxon` and `mannwhitneyu` spend most of a call on input handling (about 2 ms
each, which dominated the whole protocol), and scipy's permutation path for small samples with
ties takes almost a second. Here the same statistics and p-values follow scipy's own choices
and formulas (see each function); only Mann-Whitney's exact small-sample case calls scipy.
tests/stats/test_rank_tests.py checks equality with scipy on the same vectors.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

# scipy's `method="auto"` thresholds (scipy.stats._wilcoxon / _mannwhitneyu).
WILCOXON_EXACT_MAX_N = 50
WILCOXON_PERMUTATION_MAX_N = 13
MANNWHITNEY_EXACT_MAX_N = 8


def average_ranks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranks (1-based, ties averaged) and the size of every tie group."""
    unique, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    del unique
    upper = np.cumsum(counts)
    average = upper - (counts - 1) / 2
    return average[inverse], counts


def signed_rank_statistic(d: np.ndarray) -> float:
    """W+: the sum of the ranks of |d| over positive d, zeros dropped (scipy's statistic)."""
    nonzero = d[d != 0]
    if nonzero.size == 0:
        return 0.0
    ranks, _ = average_ranks(np.abs(nonzero))
    return float(ranks[nonzero > 0].sum())


def wilcoxon_greater(d: np.ndarray) -> tuple[float, float]:
    """`scipy.stats.wilcoxon(d, alternative="greater")`: (W+, p); NaN for empty input.

    scipy's `method="auto"`: the exact null distribution for n <= 50 without ties or zeros;
    all 2^n sign flips (a permutation test, exact at this size) for n <= 13 with ties or
    zeros; otherwise the normal approximation with tie correction, no continuity correction.
    """
    d = np.asarray(d, dtype=np.float64)
    if d.size == 0:
        return math.nan, math.nan
    nonzero = d[d != 0]  # zero_method="wilcox": zero differences are dropped
    count = nonzero.size
    ranks, ties = average_ranks(np.abs(nonzero))
    r_plus = float(ranks[nonzero > 0].sum())
    untied = count == d.size and (ties <= 1).all()
    if d.size <= WILCOXON_EXACT_MAX_N and untied:
        return r_plus, _exact_signed_rank_sf(count, r_plus)
    if d.size <= WILCOXON_PERMUTATION_MAX_N:
        return r_plus, _sign_flip_p(ranks, r_plus)
    if count == 0:
        return 0.0, math.nan  # scipy: no non-zero difference, no normal approximation
    mean = count * (count + 1) / 4
    variance = count * (count + 1) * (2 * count + 1)
    se = math.sqrt((variance - float((ties.astype(np.float64) ** 3 - ties).sum()) / 2) / 24)
    z = (r_plus - mean) / se
    return r_plus, float(special.ndtr(-z))


def _exact_signed_rank_sf(count: int, r_plus: float) -> float:
    """P(W+ >= r_plus) without ties: subsets of {1..count} by their sum (dynamic programming)."""
    ways = np.zeros(count * (count + 1) // 2 + 1)
    ways[0] = 1.0
    for rank in range(1, count + 1):
        ways[rank:] = ways[rank:] + ways[:-rank].copy()
    pmf = ways / 2.0**count
    return float(min(pmf[int(math.floor(r_plus)) :].sum(), 1.0))


def _sign_flip_p(ranks: np.ndarray, r_plus: float) -> float:
    """Share of all sign flips whose W+ reaches the observed one (scipy's tolerance)."""
    count = ranks.size
    if count == 0:
        return 1.0
    flips = (np.arange(2**count)[:, None] >> np.arange(count)[None, :]) & 1
    null = flips @ ranks
    tolerance = abs(np.finfo(np.float64).eps * 100 * r_plus)
    return float(np.count_nonzero(null >= r_plus - tolerance) / null.size)


def mannwhitney_greater(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """`scipy.stats.mannwhitneyu(x, y, alternative="greater")`: (U1 of x, p)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n1, n2 = x.size, y.size
    if n1 == 0 or n2 == 0:
        return math.nan, math.nan
    ranks, ties = average_ranks(np.concatenate([x, y]))
    if min(n1, n2) <= MANNWHITNEY_EXACT_MAX_N and (ties <= 1).all():
        result = stats.mannwhitneyu(x, y, alternative="greater")
        return float(result.statistic), float(result.pvalue)
    u1 = float(ranks[:n1].sum()) - n1 * (n1 + 1) / 2
    n = n1 + n2
    tie_term = float((ties.astype(np.float64) ** 3 - ties).sum())
    s = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))))
    if s == 0:
        return u1, 1.0  # all values tied: no evidence either way
    z = (u1 - n1 * n2 / 2 - 0.5) / s
    return u1, float(np.clip(special.ndtr(-z), 0.0, 1.0))
