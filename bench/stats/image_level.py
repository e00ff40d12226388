"""Table 3's image level as the paper reports it: bootstrap CIs and non-inferiority tests.

The figures themselves are the evaluator's (`bench.evaluate.image_level`). For each figure F
(sensitivity, specificity, AUC at the threshold) and independent rater E, on the study's shared
resamples:

- CI: F(E, A) and F(E, M) recomputed in every resample (a resample weighs each case by how
  often it draws it), percentile interval.
- Bias: F has no per-case value, so the signed-rank test of the metrics does not apply; the
  test reads the bootstrap distribution of the paired difference F(E, M) - F(E, A) instead,
  the way the precision test reads its SD difference. H0: difference <= -margin (the margin
  of metrics in [0, 1]); p = share of resamples (plus one, over R + 1) on the H0 side.
- Precision: the precision test of the metrics (`noninferiority.precision_test`, same
  resamples) on the per-case values whose mean over their class is F: for sensitivity the
  positives' "called positive" (1 or 0), for specificity the negatives' "called negative",
  for AUC each positive's placement among the negatives (the share of negatives it outscores,
  ties one half).

These tests form their own Holm families (`bench.stats.study`), so that adding them leaves
every p-value and verdict of the metrics as it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from bench.evaluate.image_level import ImageLevel, weighted_auc
from bench.metric_names import MarginFamily
from bench.stats.bootstrap import CaseBootstrap, percentile_interval
from bench.stats.config import StatsConfig
from bench.stats.noninferiority import (
    PrecisionTest,
    Verdict,
    complete_pairs,
    decide,
    precision_test,
    shifted_differences,
    with_adjusted_precision,
)

FIGURES = ("sensitivity", "specificity", "auc")


@dataclass(frozen=True)
class ImageLevelTest:
    """One image-level figure against independent rater E: both values, CIs and both tests."""

    rater: str
    figure: str  # one of FIGURES
    rater_value: float  # F(E, A), as in the image-level table
    rater_ci_low: float
    rater_ci_high: float
    method_value: float  # F(E, M)
    method_ci_low: float
    method_ci_high: float
    margin: float  # absolute (a relative margin resolved against F(E, A))
    difference: float  # F(E, M) - F(E, A): higher is better
    difference_ci_low: float
    difference_ci_high: float
    p_value: float  # share of resamples with difference <= -margin
    p_adjusted: float
    verdict: Verdict
    precision: PrecisionTest  # SDs of the per-case values behind F


@dataclass(frozen=True)
class PairVolumes:
    """What image level reads of one (reference, test) pair on the study's case axis."""

    reference_ml: np.ndarray
    test_ml: np.ndarray

    @property
    def defined(self) -> np.ndarray:
        return ~(np.isnan(self.reference_ml) | np.isnan(self.test_ml))

    def classes(self, threshold_ml: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(positive, negative, called positive), each limited to defined cases."""
        defined = self.defined
        positive = defined & (np.nan_to_num(self.reference_ml, nan=-1.0) >= threshold_ml)
        called = defined & (np.nan_to_num(self.test_ml, nan=-1.0) >= threshold_ml)
        return positive, defined & ~positive, called


def figure_resamples(volumes: PairVolumes, boot: CaseBootstrap, threshold_ml: float) -> np.ndarray:
    """(3, R): sensitivity, specificity and AUC in every resample; NaN where undefined."""
    positive, negative, called = volumes.classes(threshold_ml)
    weights = boot.weights()
    classes = np.stack([positive & called, positive, negative & ~called, negative])
    hits, positives, correct_negatives, negatives = np.einsum(
        "sn,nr->sr", classes.astype(np.float64), weights
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        sensitivity, specificity = hits / positives, correct_negatives / negatives
    auc = weighted_auc(volumes.test_ml, positive, weights, negative)
    return np.stack([sensitivity, specificity, auc])


def case_values(volumes: PairVolumes, threshold_ml: float) -> np.ndarray:
    """(3, n): per case, the value whose mean over its class is each figure; NaN elsewhere."""
    positive, negative, called = volumes.classes(threshold_ml)
    scores = volumes.test_ml
    out = np.full((3, scores.size), np.nan)
    out[0, positive] = called[positive]
    out[1, negative] = ~called[negative]
    if negative.any():
        below = (scores[negative][None, :] < scores[positive][:, None]).sum(axis=1)
        ties = (scores[negative][None, :] == scores[positive][:, None]).sum(axis=1)
        out[2, positive] = (below + 0.5 * ties) / negative.sum()
    return out


def difference_test(
    rater: np.ndarray, method: np.ndarray, margin: float, ci_level: float
) -> tuple[float, float, float]:
    """(p, CI low, CI high) of the paired bootstrap difference method - rater.

    p = (1 + resamples with difference + margin <= 0) / (1 + usable resamples); a difference
    within rounding of -margin is on it (H0 side), as in the signed-rank test.
    """
    usable = ~(np.isnan(rater) | np.isnan(method))
    difference = method[usable] - rater[usable]
    if difference.size == 0 or math.isnan(margin):
        return math.nan, math.nan, math.nan
    low, high = percentile_interval(difference, ci_level)
    on_h0_side = int((shifted_differences(difference, margin) <= 0).sum())
    return (1 + on_h0_side) / (1 + difference.size), float(low), float(high)


def compare_image_level(
    rater: str,
    rater_pair: tuple[ImageLevel, PairVolumes],
    method_pair: tuple[ImageLevel, PairVolumes],
    boot: CaseBootstrap,
    config: StatsConfig,
) -> tuple[ImageLevelTest, ...]:
    """Unadjusted image-level tests of (E, M) against (E, A), one per figure."""
    threshold, level = config.image_level_threshold_ml, config.ci_level
    (rater_level, rater_volumes), (method_level, method_volumes) = rater_pair, method_pair
    rater_boot = figure_resamples(rater_volumes, boot, threshold)
    method_boot = figure_resamples(method_volumes, boot, threshold)
    rater_low, rater_high = percentile_interval(rater_boot, level)
    method_low, method_high = percentile_interval(method_boot, level)
    rater_cases = case_values(rater_volumes, threshold)
    method_cases = case_values(method_volumes, threshold)
    keep = complete_pairs(rater_cases, method_cases)
    sds = boot.sds(
        np.concatenate([np.where(keep, rater_cases, np.nan), np.where(keep, method_cases, np.nan)])
    )
    margin_rule = config.margins[MarginFamily.UNIT_INTERVAL.value]
    tests = []
    for j, figure in enumerate(FIGURES):
        a, m = getattr(rater_level, figure), getattr(method_level, figure)
        margin = margin_rule.resolve(a) if not math.isnan(a) else math.nan
        p, low, high = difference_test(rater_boot[j], method_boot[j], margin, level)
        tests.append(
            ImageLevelTest(
                rater=rater,
                figure=figure,
                rater_value=a,
                rater_ci_low=float(rater_low[j]),
                rater_ci_high=float(rater_high[j]),
                method_value=m,
                method_ci_low=float(method_low[j]),
                method_ci_high=float(method_high[j]),
                margin=float(margin),
                difference=m - a,
                difference_ci_low=low,
                difference_ci_high=high,
                p_value=p,
                p_adjusted=math.nan,
                verdict=Verdict.NOT_TESTED,
                precision=precision_test(
                    rater,
                    figure,
                    rater_cases[j],
                    method_cases[j],
                    sds[j],
                    sds[len(FIGURES) + j],
                    config.precision_margin,
                    level,
                ),
            )
        )
    return tuple(tests)


def with_adjusted_image_level(
    test: ImageLevelTest,
    p_adjusted: float,
    precision_p_adjusted: float,
    ranksum_p_adjusted: float,
    alpha: float,
) -> ImageLevelTest:
    return replace(
        test,
        p_adjusted=float(p_adjusted),
        verdict=decide(p_adjusted, alpha),
        precision=with_adjusted_precision(
            test.precision, precision_p_adjusted, ranksum_p_adjusted, alpha
        ),
    )
