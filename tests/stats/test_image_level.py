"""Image level at a volume threshold for one rater pair, against a hand count."""

from __future__ import annotations

import numpy as np
import pytest

from bench.stats.image_level import image_level


def test_hand_counted_example() -> None:
    reference = np.array([30.0, 25.0, 5.0, 0.0, 19.9, 20.0, np.nan])
    test = np.array([28.0, 10.0, 22.0, 1.0, 3.0, 21.0, 50.0])
    recall = np.array([0.9, 0.0, 0.5, np.nan, 0.2, 0.7, np.nan])
    reasons = np.array(["", "", "", "reference empty", "", "", ""], dtype=object)
    # The last case has no reference volume and is left out. Positives (>= 20 ml): cases
    # 0, 1, 5; called positive: 0, 2, 5.
    result = image_level("B", "A", reference, test, recall, reasons, 20.0)
    assert (result.reference, result.test, result.n, result.positives) == ("B", "A", 6, 3)
    assert result.sensitivity == pytest.approx(2 / 3)  # cases 0 and 5 of 0, 1, 5
    assert result.specificity == pytest.approx(2 / 3)  # cases 3 and 4 of 2, 3, 4
    assert result.accuracy == pytest.approx(4 / 6)
    # AUC by pairs (positive score > negative score): positives 28, 10, 21 against negatives
    # 22, 1, 3: 28 beats 3, 10 beats 2, 21 beats 2 -> 7 of 9.
    assert result.auc == pytest.approx(7 / 9)
    # Detection among the 5 scored references (case 3 is empty): all but case 1 overlap.
    assert result.detection_rate == pytest.approx(4 / 5)


def test_one_class_leaves_rates_undefined() -> None:
    result = image_level(
        "B", "A", np.array([1.0, 2.0]), np.array([1.0, 30.0]), np.ones(2), np.array(["", ""]), 20.0
    )
    assert np.isnan(result.sensitivity) and np.isnan(result.auc)
    assert result.specificity == 0.5
