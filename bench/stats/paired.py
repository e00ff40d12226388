"""Paired comparison of methods on the same cases: is method X better than method Y?

Each method is scored against the reference rater on every case; for two methods the per-case
difference d = metric(ref, X) - metric(ref, Y) over the cases both were scored on (a case where
either metric is undefined is dropped, and the count says how many were used) is tested with a
two-sided Wilcoxon signed-rank test (H0: d is symmetric about 0). Effect size: the median of d,
with a percentile case-bootstrap CI (`CaseBootstrap`, seeded like the study). All tests of one
call form one Holm-Bonferroni family.

Two-sided, because a comparison of methods has no direction fixed in advance; the CI level
defaults to 95% to match a two-sided test at alpha 0.05 (the study's 90% goes with one-sided
non-inferiority tests).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from bench.metric_names import BY_NAME, Direction
from bench.stats.bootstrap import CaseBootstrap, percentile_interval
from bench.stats.config import StatsConfig
from bench.stats.multiplicity import holm
from bench.stats.rank_tests import wilcoxon_greater
from bench.stats.summary import observed_median

_STUDY_DEFAULTS = StatsConfig()
DEFAULT_METRICS: tuple[str, ...] = ("SDT5", "Dice")


@dataclass(frozen=True)
class CompareConfig:
    """What changes a number of a comparison; resamples and seed are the study's defaults."""

    metrics: tuple[str, ...] = DEFAULT_METRICS
    alpha: float = _STUDY_DEFAULTS.alpha
    ci_level: float = 0.95
    resamples: int = _STUDY_DEFAULTS.resamples
    seed: int = _STUDY_DEFAULTS.seed

    def __post_init__(self) -> None:
        problems = []
        if not self.metrics:
            problems.append("no metric to compare")
        for metric in self.metrics:
            if metric not in BY_NAME:
                problems.append(f"unknown metric {metric!r}")
            elif BY_NAME[metric].direction is Direction.NEITHER:
                problems.append(f"{metric} has no better direction and cannot be compared")
        if not 0 < self.alpha < 1:
            problems.append(f"alpha must be in (0, 1), got {self.alpha}")
        if not 0 < self.ci_level < 1:
            problems.append(f"ci_level must be in (0, 1), got {self.ci_level}")
        if self.resamples < 10:
            problems.append(f"resamples must be at least 10, got {self.resamples}")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class PairedComparison:
    """One metric, two methods: d = metric(reference, first) - metric(reference, second)."""

    metric: str
    first: str
    second: str
    shared: int  # cases both methods were scored on
    n: int  # of those, cases where the metric is defined for both: the ones tested
    median_difference: float
    ci_low: float
    ci_high: float
    w_plus: float  # sum of the ranks of |d| over positive d (zeros dropped)
    p_value: float  # two-sided; NaN when no case is usable
    p_adjusted: float  # Holm over every comparison of the call

    @property
    def dropped(self) -> int:
        return self.shared - self.n

    def significant(self, alpha: float) -> bool:
        return not math.isnan(self.p_adjusted) and self.p_adjusted < alpha

    def favours(self) -> str | None:
        """The method the median difference favours (the metric's direction), None at 0."""
        if math.isnan(self.median_difference) or self.median_difference == 0:
            return None
        higher = BY_NAME[self.metric].direction is Direction.HIGHER_IS_BETTER
        return self.first if (self.median_difference > 0) == higher else self.second


def wilcoxon_two_sided(d: np.ndarray) -> tuple[float, float]:
    """`scipy.stats.wilcoxon(d)` (two-sided, method "auto"): (W+, p); NaN for empty input.

    scipy's two-sided p is twice the smaller one-sided tail, capped at 1, in each of its
    methods (exact, sign flips, normal approximation); the lower tail of d is the upper tail
    of -d, so both come from `wilcoxon_greater`. Every difference 0: no evidence, p = 1.
    """
    d = np.asarray(d, dtype=np.float64)
    if d.size == 0:
        return math.nan, math.nan
    if not d.any():
        return 0.0, 1.0
    w_plus, upper = wilcoxon_greater(d)
    _, lower = wilcoxon_greater(-d)
    return w_plus, float(min(1.0, 2 * min(upper, lower)))


def reference_scores(
    per_case: pd.DataFrame, reference: str, method: str, metrics: Sequence[str]
) -> pd.DataFrame:
    """One row per case (index, sorted), one column per metric: `method` against `reference`."""
    rows = per_case[(per_case["reference"] == reference) & (per_case["test"] == method)]
    scores = rows.set_index("case").loc[:, list(metrics)].astype(np.float64)
    return scores.sort_index()


def compare_pair(
    first: str,
    second: str,
    scores_first: pd.DataFrame,
    scores_second: pd.DataFrame,
    config: CompareConfig,
) -> list[PairedComparison]:
    """Unadjusted comparisons of every configured metric over the shared cases."""
    shared = scores_first.index.intersection(scores_second.index).sort_values()
    out = []
    for metric in config.metrics:
        a = scores_first.loc[shared, metric].to_numpy(np.float64)
        b = scores_second.loc[shared, metric].to_numpy(np.float64)
        usable = ~(np.isnan(a) | np.isnan(b))
        d = a[usable] - b[usable]
        w_plus, p_value = wilcoxon_two_sided(d)
        ci_low = ci_high = math.nan
        if d.size:
            boot = CaseBootstrap(d.size, config.resamples, config.seed)
            low, high = percentile_interval(boot.medians(d)[0], config.ci_level)
            ci_low, ci_high = float(low), float(high)
        out.append(
            PairedComparison(
                metric=metric,
                first=first,
                second=second,
                shared=len(shared),
                n=int(d.size),
                median_difference=observed_median(d),
                ci_low=ci_low,
                ci_high=ci_high,
                w_plus=w_plus,
                p_value=p_value,
                p_adjusted=math.nan,
            )
        )
    return out


def compare_methods(
    scores: dict[str, pd.DataFrame],
    pairs: Sequence[tuple[str, str]],
    config: CompareConfig | None = None,
) -> tuple[PairedComparison, ...]:
    """Every metric of every (first, second) pair, Holm-adjusted as one family.

    `scores[method]`: `reference_scores` of that method (the same reference for all).
    """
    config = config or CompareConfig()
    tests = [
        test
        for first, second in pairs
        for test in compare_pair(first, second, scores[first], scores[second], config)
    ]
    adjusted = holm([t.p_value for t in tests])
    return tuple(replace(t, p_adjusted=float(p)) for t, p in zip(tests, adjusted, strict=True))


def all_pairs(methods: Sequence[str]) -> list[tuple[str, str]]:
    """(a, b), (a, c), (b, c) for methods a, b, c: every pair once, in the order given."""
    return [(a, b) for i, a in enumerate(methods) for b in methods[i + 1 :]]
