"""Image-level classification at a volume threshold (the paper's 20 ml) for one rater pair.

The computation is the evaluator's (`bench.evaluate.image_level`: positive when the reference
volume reaches the threshold, called positive when the test volume does, AUC with the test
volume as the score). Here it gets the cases of one (reference, test) pair on the study's case
axis, leaving out cases without both volumes, and a flat record the results file can store.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.evaluate.image_level import image_level as evaluate_image_level


@dataclass(frozen=True)
class ImageLevel:
    reference: str
    test: str
    threshold_ml: float
    n: int  # cases with both volumes defined
    positives: int  # reference volume >= threshold
    sensitivity: float
    specificity: float
    auc: float  # P(score of a positive > score of a negative), ties count half
    accuracy: float  # correct classification rate
    detection_rate: float  # scored references the test overlaps at all (Recall > 0)


def image_level(
    reference: str,
    test: str,
    reference_volume_ml: np.ndarray,
    test_volume_ml: np.ndarray,
    recall: np.ndarray,
    nan_reasons: np.ndarray,
    threshold_ml: float,
) -> ImageLevel:
    keep = ~(np.isnan(reference_volume_ml) | np.isnan(test_volume_ml))
    result = evaluate_image_level(
        reference_volume_ml[keep],
        test_volume_ml[keep],
        recall[keep],
        np.asarray(nan_reasons, dtype=object)[keep],
        threshold_ml,
    )
    return ImageLevel(
        reference=reference,
        test=test,
        threshold_ml=result.threshold_ml,
        n=result.n_cases,
        positives=result.n_positive,
        sensitivity=result.sensitivity,
        specificity=result.specificity,
        auc=result.auc,
        accuracy=result.correct_classification_rate,
        detection_rate=result.lesion_detection_rate,
    )
