"""Descriptive summaries: median with a percentile-bootstrap CI, and Shapiro-Wilk normality.

The point estimate is the median of the observed defined values (so anyone can re-derive it
from the per-case table); the interval comes from the shared case bootstrap.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from bench.metric_names import METRIC_NAMES

SHAPIRO_MIN_N = 3  # scipy's minimum


@dataclass(frozen=True)
class Summary:
    """One metric of one (reference, test) pair over the cases where it is defined."""

    metric: str
    n: int
    median: float
    ci_low: float
    ci_high: float
    shapiro_w: float
    shapiro_p: float

    @property
    def half_width(self) -> float:
        """The paper prints `median ± half-width` of the CI."""
        return (self.ci_high - self.ci_low) / 2


@dataclass(frozen=True)
class PairSummary:
    """Every metric of one (reference, test) pair: a row of Table 2, a column of Table 3."""

    reference: str
    test: str
    n_cases: int  # cases with a row for this pair (metrics may still be undefined)
    metrics: tuple[Summary, ...]

    def __getitem__(self, metric: str) -> Summary:
        for summary in self.metrics:
            if summary.metric == metric:
                return summary
        raise KeyError(metric)


def shapiro(values: np.ndarray) -> tuple[float, float]:
    """Shapiro-Wilk (W, p) of the defined values; NaN when fewer than 3 or all equal."""
    values = values[~np.isnan(values)]
    if values.size < SHAPIRO_MIN_N or np.ptp(values) == 0:
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "p-value may not be accurate for N > 5000"
        result = stats.shapiro(values)
    return float(result.statistic), float(result.pvalue)


def observed_median(values: np.ndarray) -> float:
    """Median of the defined values, NaN when none (the number a results file must match)."""
    values = values[~np.isnan(values)]
    return float(np.median(values)) if values.size else math.nan


def summarize(metric: str, values: np.ndarray, ci_low: float, ci_high: float) -> Summary:
    """A Summary from the observed values and their bootstrap interval."""
    w, p = shapiro(values)
    return Summary(
        metric=metric,
        n=int((~np.isnan(values)).sum()),
        median=observed_median(values),
        ci_low=float(ci_low),
        ci_high=float(ci_high),
        shapiro_w=w,
        shapiro_p=p,
    )


def summarize_pair(
    reference: str,
    test: str,
    n_cases: int,
    values: np.ndarray,
    ci_low: np.ndarray,
    ci_high: np.ndarray,
) -> PairSummary:
    """`values` is (n_cases, n_metrics) in METRIC_NAMES order; CIs are per metric."""
    metrics = tuple(
        summarize(name, values[:, j], ci_low[j], ci_high[j]) for j, name in enumerate(METRIC_NAMES)
    )
    return PairSummary(reference, test, n_cases, metrics)
