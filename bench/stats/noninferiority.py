"""Non-inferiority of a method against an independent rater E, in bias and in precision.

Bias: d = metric(E, M) - metric(E, A) per case, sign-flipped for lower-is-better metrics so that
higher is always better. H0: median(d) <= -margin; H1: median(d) > -margin; one-sided Wilcoxon
signed-rank test of d + margin (scipy `wilcoxon(..., alternative="greater")`).

Precision: the SD of metric(E, A) and of metric(E, M) over the same bootstrap resamples. The
paper compares the two sets of R bootstrapped SDs with a one-sided Wilcoxon rank-sum test with
"lower boundary 0", read here as H1: the method's SDs are stochastically smaller than the
rater's SDs plus the precision margin (0 by default). That p-value shrinks as R grows, whatever
the evidence, so the verdict comes from the bootstrap distribution of the paired SD difference
SD(E, M) - SD(E, A) instead: p = share of resamples with difference >= margin, and its CI.

Both tests treat a value within rounding of the margin as on it (H0 side): a method that is
the rater shifted by a constant has the rater's SDs exactly, and its bootstrap SD differences
are rounding noise around 0 that would otherwise decide the p-value.

Pairs with either metric undefined (NaN) are dropped from both tests; n reports what is left.
Tests are built unadjusted; `with_adjusted` fills in Holm's adjusted p and the verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import Enum

import numpy as np

from bench.metric_names import BY_NAME, Direction
from bench.stats.bootstrap import percentile_interval
from bench.stats.config import Margin
from bench.stats.rank_tests import mannwhitney_greater, wilcoxon_greater
from bench.stats.summary import observed_median, shapiro

# A distance from the margin below this (relative to the values compared, at least 1) is a
# floating-point zero, not a tiny loss or gain.
_ZERO_TOLERANCE = 1e-12


class Verdict(str, Enum):
    NON_INFERIOR = "non-inferior"
    NOT_SHOWN = "not shown"
    NOT_TESTED = "not tested"


def decide(p_adjusted: float, alpha: float) -> Verdict:
    if math.isnan(p_adjusted):
        return Verdict.NOT_TESTED
    return Verdict.NON_INFERIOR if p_adjusted < alpha else Verdict.NOT_SHOWN


@dataclass(frozen=True)
class BiasTest:
    rater: str
    metric: str
    n: int  # complete pairs used
    margin: float  # absolute, in the metric's unit (a relative margin already resolved)
    median_difference: float  # median of d, higher is better
    statistic: float  # Wilcoxon W+ of d + margin
    p_value: float
    p_adjusted: float
    verdict: Verdict
    shapiro_p: float  # normality of d, reported because the paper reports it


@dataclass(frozen=True)
class PrecisionTest:
    rater: str
    metric: str
    n: int  # complete pairs used
    margin: float  # absolute SD margin
    sd_rater: float  # SD of metric(E, A) over the n pairs
    sd_method: float  # SD of metric(E, M) over the n pairs
    sd_difference: float  # sd_method - sd_rater: above 0, the method is more variable
    ci_low: float  # percentile bootstrap CI of the SD difference (unadjusted)
    ci_high: float
    p_value: float  # bootstrap p: share of resamples with SD difference >= margin
    p_adjusted: float
    verdict: Verdict  # from p_adjusted: the verdict this harness stands behind
    ranksum_statistic: float  # the paper's test: Mann-Whitney U of rater SDs + margin
    ranksum_p: float
    ranksum_p_adjusted: float
    ranksum_verdict: Verdict


def oriented_difference(metric: str, rater: np.ndarray, method: np.ndarray) -> np.ndarray:
    """metric(E, M) - metric(E, A), negated for lower-is-better metrics: higher is better."""
    direction = BY_NAME[metric].direction
    if direction is Direction.NEITHER:
        raise ValueError(f"{metric} has no better direction and cannot be tested")
    difference = method - rater
    return -difference if direction is Direction.LOWER_IS_BETTER else difference


def complete_pairs(rater: np.ndarray, method: np.ndarray) -> np.ndarray:
    return ~(np.isnan(rater) | np.isnan(method))


def bias_test(
    rater_name: str, metric: str, rater: np.ndarray, method: np.ndarray, margin: Margin
) -> BiasTest:
    """rater = metric(E, A), method = metric(E, M), aligned per case."""
    keep = complete_pairs(rater, method)
    difference = oriented_difference(metric, rater[keep], method[keep])
    margin_abs = margin.resolve(observed_median(rater[keep]))
    n = int(difference.size)
    statistic, p_value = signed_rank_greater(shifted_differences(difference, margin_abs))
    return BiasTest(
        rater=rater_name,
        metric=metric,
        n=n,
        margin=float(margin_abs),
        median_difference=observed_median(difference),
        statistic=statistic,
        p_value=p_value,
        p_adjusted=math.nan,
        verdict=Verdict.NOT_TESTED,
        shapiro_p=shapiro(difference)[1],
    )


def shifted_differences(d: np.ndarray, margin: float) -> np.ndarray:
    """d + margin, with floating-point zeros snapped to 0 (a pair exactly on the margin)."""
    return snap_to_margin(d + margin, margin)


def snap_to_margin(distance: np.ndarray, scale: float) -> np.ndarray:
    """Signed distances from the margin, those within rounding of it set to exactly 0.

    Rounding is relative to `scale`, the size of the values compared (at least 1).
    """
    scale = max(abs(scale), 1.0) if math.isfinite(scale) else 1.0
    return np.where(np.abs(distance) < _ZERO_TOLERANCE * scale, 0.0, distance)


def signed_rank_greater(shifted: np.ndarray) -> tuple[float, float]:
    """One-sided signed-rank test that the median of d + margin is above 0.

    Zeros are dropped (scipy's zero_method="wilcox"); when every difference lies exactly
    on the margin there is no evidence at all: p = 1.
    """
    if shifted.size and not shifted.any():
        return 0.0, 1.0
    return wilcoxon_greater(shifted)


def precision_test(
    rater_name: str,
    metric: str,
    rater: np.ndarray,
    method: np.ndarray,
    boot_sd_rater: np.ndarray,
    boot_sd_method: np.ndarray,
    margin: Margin,
    ci_level: float,
) -> PrecisionTest:
    """Bootstrapped SDs must come from the same resamples, over the complete pairs only."""
    keep = complete_pairs(rater, method)
    n = int(keep.sum())
    sd_rater = float(np.std(rater[keep], ddof=1)) if n > 1 else math.nan
    sd_method = float(np.std(method[keep], ddof=1)) if n > 1 else math.nan
    margin_abs = margin.resolve(sd_rater) if not math.isnan(sd_rater) else math.nan
    usable = ~(np.isnan(boot_sd_rater) | np.isnan(boot_sd_method))
    boot_rater, boot_method = boot_sd_rater[usable], boot_sd_method[usable]
    boot_difference = boot_method - boot_rater
    untested = n < 2 or boot_difference.size == 0
    if untested:
        ci_low = ci_high = p_boot = statistic = p_ranksum = math.nan
    else:
        ci_low, ci_high = (float(v) for v in percentile_interval(boot_difference, ci_level))
        # H0 side: the method's SD exceeds the rater's by the margin or more (on it counts).
        excess = snap_to_margin(boot_difference - margin_abs, max(margin_abs, sd_rater))
        p_boot = (1 + int((excess >= 0).sum())) / (1 + boot_difference.size)
        statistic, p_ranksum = mannwhitney_greater(boot_rater + margin_abs, boot_method)
    return PrecisionTest(
        rater=rater_name,
        metric=metric,
        n=n,
        margin=float(margin_abs),
        sd_rater=sd_rater,
        sd_method=sd_method,
        sd_difference=sd_method - sd_rater,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=p_boot,
        p_adjusted=math.nan,
        verdict=Verdict.NOT_TESTED,
        ranksum_statistic=statistic,
        ranksum_p=p_ranksum,
        ranksum_p_adjusted=math.nan,
        ranksum_verdict=Verdict.NOT_TESTED,
    )


def with_adjusted_bias(test: BiasTest, p_adjusted: float, alpha: float) -> BiasTest:
    return replace(test, p_adjusted=float(p_adjusted), verdict=decide(p_adjusted, alpha))


def with_adjusted_precision(
    test: PrecisionTest, p_adjusted: float, ranksum_p_adjusted: float, alpha: float
) -> PrecisionTest:
    return replace(
        test,
        p_adjusted=float(p_adjusted),
        verdict=decide(p_adjusted, alpha),
        ranksum_p_adjusted=float(ranksum_p_adjusted),
        ranksum_verdict=decide(ranksum_p_adjusted, alpha),
    )
