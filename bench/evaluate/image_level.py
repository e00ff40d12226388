"""Image-level (per-scan) detection over a set of cases, at a lesion-volume threshold.

A case is positive when its reference volume is at least the threshold (default 20 ml); the
test calls it positive when its own volume is. The test volume is also the score for a
rank-based AUC, so a method is rewarded for ordering scans by lesion size even where the
threshold cuts wrongly. This is the one definition: the study's Table 3 (`bench.stats`) and
its bootstrap use these functions too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from bench.evaluate.pair import reference_scored

DEFAULT_THRESHOLD_ML = 20.0


@dataclass(frozen=True)
class ImageLevel:
    """Image-level agreement of a test with a reference over a set of cases.

    The field names are the results file's (`bench.results`), where Table 3 stores them.
    """

    reference: str
    test: str
    threshold_ml: float
    n: int  # cases with both volumes defined
    positives: int  # reference volume >= threshold
    sensitivity: float  # positives called positive; NaN without positives
    specificity: float  # negatives called negative; NaN without negatives
    auc: float  # Mann-Whitney AUC of the test volume; NaN unless both classes occur
    accuracy: float  # correct classification rate: (true positives + true negatives) / n
    detection_rate: float  # scored references the test overlaps at all (Recall > 0)

    def as_dict(self) -> dict[str, str | float | int]:
        return asdict(self)


def weighted_auc(
    scores: np.ndarray,
    positive: np.ndarray,
    weights: np.ndarray,
    negative: np.ndarray | None = None,
) -> np.ndarray:
    """The Mann-Whitney AUC of `scores` under each column of case weights: (n,), (n, R) -> (R,).

    P(score of a positive > score of a negative), ties counting one half, each case counted
    `weights[i, r]` times; a bootstrap resample is its draw counts. With whole-number weights
    every sum is exact and the one division rounds once, so a unit weight gives bit for bit
    the mid-rank formula (and sklearn's roc_auc_score). NaN where a class has no weight.
    `negative` (default: not positive) lets a caller leave cases out of both classes.
    """

    scores = np.asarray(scores, np.float64)
    positive = np.asarray(positive, bool)
    negative = ~positive if negative is None else np.asarray(negative, bool)
    weights = np.asarray(weights, np.float64)
    weights = weights[:, None] if weights.ndim == 1 else weights
    order = np.argsort(scores[negative], kind="stable")
    negative_scores = scores[negative][order]
    # Row k: the negatives' weight among the k lowest negative scores (row 0: none).
    cumulative = np.zeros((order.size + 1, weights.shape[1]))
    np.cumsum(weights[negative][order], axis=0, out=cumulative[1:])
    lower = np.searchsorted(negative_scores, scores[positive], side="left")
    lower_or_tied = np.searchsorted(negative_scores, scores[positive], side="right")
    twice_wins = cumulative[lower] + cumulative[lower_or_tied]  # ties count one half
    u = 0.5 * np.einsum("pr,pr->r", weights[positive], twice_wins)
    pairs = weights[positive].sum(axis=0) * cumulative[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, u / pairs, np.nan)


def mann_whitney_auc(scores: Sequence[float] | np.ndarray, positive: Sequence[bool]) -> float:
    """P(score of a positive > score of a negative), ties counting one half; NaN with one class."""
    scores = np.asarray(scores, np.float64)
    return float(weighted_auc(scores, np.asarray(positive, bool), np.ones(scores.size))[0])


def _rate(hits: np.ndarray, among: np.ndarray) -> float:
    return float(hits[among].mean()) if among.any() else float("nan")


def image_level(
    reference: str,
    test: str,
    v_ref: Sequence[float] | np.ndarray,
    v_test: Sequence[float] | np.ndarray,
    recall: Sequence[float] | np.ndarray,
    nan_reasons: Sequence[str] | np.ndarray | None = None,
    threshold_ml: float = DEFAULT_THRESHOLD_ML,
) -> ImageLevel:
    """Image-level metrics from per-case volumes (ml) and recalls; cases without both volumes
    (NaN: no row for the pair) are left out.

    Lesion detection rate: among cases whose reference is scored (above the small-volume
    threshold, i.e. non-empty by default; read from `nan_reasons`), the fraction where the test
    overlaps the reference at all (Recall > 0). A test at or below the small threshold counts
    as not detecting (its Recall is NaN).
    """
    v_ref = np.asarray(v_ref, np.float64)
    v_test = np.asarray(v_test, np.float64)
    recall = np.asarray(recall, np.float64)
    keep = ~(np.isnan(v_ref) | np.isnan(v_test))
    v_ref, v_test, recall = v_ref[keep], v_test[keep], recall[keep]
    scored = v_ref > 0
    if nan_reasons is not None:
        reasons = np.asarray(nan_reasons, dtype=object)[keep]
        scored &= np.array([reference_scored(r) for r in reasons], dtype=bool)
    positive = v_ref >= threshold_ml
    called = v_test >= threshold_ml
    with np.errstate(invalid="ignore"):
        detected = recall > 0
    return ImageLevel(
        reference=reference,
        test=test,
        threshold_ml=float(threshold_ml),
        n=int(v_ref.size),
        positives=int(positive.sum()),
        sensitivity=_rate(called, positive),
        specificity=_rate(~called, ~positive),
        auc=mann_whitney_auc(v_test, positive),
        accuracy=float((called == positive).mean()) if v_ref.size else float("nan"),
        detection_rate=_rate(detected, scored),
    )


def image_level_table(
    per_case: pd.DataFrame, threshold_ml: float = DEFAULT_THRESHOLD_ML
) -> pd.DataFrame:
    """One row of image-level metrics per (reference, test) in a per-case table."""
    rows = []
    for (reference, test), group in per_case.groupby(["reference", "test"], sort=True):
        result = image_level(
            str(reference),
            str(test),
            group["V_ref"].to_numpy(),
            group["V_test"].to_numpy(),
            group["Recall"].to_numpy(),
            group["nan_reason"].fillna("").to_numpy(),
            threshold_ml,
        )
        rows.append(result.as_dict())
    return pd.DataFrame(rows, columns=[*ImageLevel.__dataclass_fields__])
