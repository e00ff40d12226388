"""Image-level (per-scan) detection over a set of cases, at a lesion-volume threshold.

A case is positive when its reference volume is at least the threshold (default 20 ml); the
test calls it positive when its own volume is. The test volume is also the score for a
rank-based AUC, so a method is rewarded for ordering scans by lesion size even where the
threshold cuts wrongly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from bench.evaluate.pair import reference_scored

DEFAULT_THRESHOLD_ML = 20.0


@dataclass(frozen=True)
class ImageLevel:
    """Image-level agreement of a test with a reference over a set of cases."""

    threshold_ml: float
    n_cases: int
    n_positive: int  # reference volume >= threshold
    sensitivity: float  # positives called positive; NaN without positives
    specificity: float  # negatives called negative; NaN without negatives
    auc: float  # Mann-Whitney AUC of the test volume; NaN unless both classes occur
    lesion_detection_rate: float  # scored references the test overlaps at all
    correct_classification_rate: float  # (true positives + true negatives) / cases

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def mann_whitney_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counting one half.

    The Mann-Whitney U statistic of the positives over n_pos * n_neg, from mid-ranks, which
    equals the area under the ROC curve of `scores` (as sklearn's roc_auc_score computes it).
    """
    from scipy.stats import rankdata  # here: importing scipy.stats takes longer than scoring

    scores = np.asarray(scores, np.float64)
    positive = np.asarray(positive, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)  # mid-ranks for ties
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def _rate(hits: np.ndarray, among: np.ndarray) -> float:
    return float(hits[among].mean()) if among.any() else float("nan")


def image_level(
    v_ref: np.ndarray,
    v_test: np.ndarray,
    recall: np.ndarray,
    nan_reasons: np.ndarray | None = None,
    threshold_ml: float = DEFAULT_THRESHOLD_ML,
) -> ImageLevel:
    """Image-level metrics from per-case volumes (ml) and recalls.

    Lesion detection rate: among cases whose reference is scored (above the small-volume
    threshold, i.e. non-empty by default; read from `nan_reasons`), the fraction where the test
    overlaps the reference at all (Recall > 0). A test at or below the small threshold counts
    as not detecting (its Recall is NaN).
    """
    v_ref = np.asarray(v_ref, np.float64)
    v_test = np.asarray(v_test, np.float64)
    recall = np.asarray(recall, np.float64)
    if nan_reasons is None:
        scored = v_ref > 0
    else:
        scored = np.array([reference_scored(r) for r in nan_reasons]) & (v_ref > 0)
    positive = v_ref >= threshold_ml
    called = v_test >= threshold_ml
    with np.errstate(invalid="ignore"):
        detected = recall > 0
    return ImageLevel(
        threshold_ml=float(threshold_ml),
        n_cases=int(v_ref.size),
        n_positive=int(positive.sum()),
        sensitivity=_rate(called, positive),
        specificity=_rate(~called, ~positive),
        auc=mann_whitney_auc(v_test, positive),
        lesion_detection_rate=_rate(detected, scored),
        correct_classification_rate=float((called == positive).mean())
        if v_ref.size
        else float("nan"),
    )


def image_level_table(
    per_case: pd.DataFrame, threshold_ml: float = DEFAULT_THRESHOLD_ML
) -> pd.DataFrame:
    """One row of image-level metrics per (reference, test) in a per-case table."""
    rows = []
    for (reference, test), group in per_case.groupby(["reference", "test"], sort=True):
        result = image_level(
            group["V_ref"].to_numpy(),
            group["V_test"].to_numpy(),
            group["Recall"].to_numpy(),
            group["nan_reason"].fillna("").to_numpy(),
            threshold_ml,
        )
        rows.append({"reference": reference, "test": test, **result.as_dict()})
    return pd.DataFrame(rows)
