"""Image-level detection, checked on hand-made volume lists (and sklearn's AUC when present)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.evaluate import image_level, image_level_table, mann_whitney_auc

NAN = float("nan")


def test_hand_case():
    # threshold 20 ml; reference positives: cases 0, 1, 2 (25, 40, 20 ml); negatives: 3, 4, 5.
    v_ref = np.array([25.0, 40.0, 20.0, 5.0, 0.0, 12.0])
    v_test = np.array([30.0, 10.0, 22.0, 21.0, 0.0, 2.0])
    recall = np.array([0.8, 0.1, 0.0, 0.6, NAN, 0.5])
    reasons = ["", "", "", "", "reference and test empty", ""]
    result = image_level("R", "T", v_ref, v_test, recall, reasons, threshold_ml=20.0)
    assert result.n == 6 and result.positives == 3
    assert result.sensitivity == pytest.approx(2 / 3)  # cases 0 and 2 called positive
    assert result.specificity == pytest.approx(2 / 3)  # case 3 (21 ml) is a false positive
    # AUC: pairs (positive, negative) with the positive's test volume higher:
    # 30 > 21, 0, 2 (3); 10 > 0, 2 (2); 22 > 21, 0, 2 (3) -> 8 of 9.
    assert result.auc == pytest.approx(8 / 9)
    # Scored references: all but case 4 (empty); overlapping: recall > 0 in cases 0, 1, 3, 5.
    assert result.detection_rate == pytest.approx(4 / 5)
    assert result.accuracy == pytest.approx(4 / 6)


def test_ties_count_half():
    assert mann_whitney_auc([5.0, 5.0], [True, False]) == 0.5
    assert mann_whitney_auc([1.0, 2.0, 3.0], [False, True, True]) == 1.0
    assert math.isnan(mann_whitney_auc([1.0, 2.0], [True, True]))


def test_auc_matches_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    scores = np.round(rng.gamma(2, 10, 200), 0)  # rounded: plenty of ties
    labels = rng.random(200) < 0.3
    assert mann_whitney_auc(scores, labels) == pytest.approx(metrics.roc_auc_score(labels, scores))


def test_small_or_empty_reference_is_not_in_the_detection_rate():
    result = image_level(
        "R",
        "T",
        v_ref=[0.3, 2.0, 0.0],
        v_test=[0.4, 0.0, 1.0],
        recall=[NAN, NAN, NAN],
        nan_reasons=["reference at or below 0.5 ml", "test empty", "reference empty"],
    )
    assert result.detection_rate == 0.0  # only case 1 counts, and it is missed
    assert math.isnan(result.sensitivity)  # no reference reaches 20 ml
    assert result.specificity == 1.0


def test_table_groups_by_pair():
    table = pd.DataFrame(
        {
            "case": ["a", "b", "a", "b"],
            "reference": ["A", "A", "B", "B"],
            "test": ["M", "M", "M", "M"],
            "V_ref": [30.0, 1.0, 25.0, 0.0],
            "V_test": [25.0, 2.0, 25.0, 0.0],
            "Recall": [0.5, 0.0, 0.9, NAN],
            "nan_reason": ["", "", "", "reference and test empty"],
        }
    )
    out = image_level_table(table, threshold_ml=20.0).set_index("reference")
    assert out.loc["A", "accuracy"] == 1.0
    assert out.loc["A", "detection_rate"] == 0.5
    assert out.loc["B", "detection_rate"] == 1.0
    assert out.loc["B", "positives"] == 1


def test_importing_the_evaluator_leaves_scipy_stats_alone():
    # scipy.stats takes longer to import than scoring a study's worth of pairs.
    code = "import sys, bench.evaluate; assert 'scipy.stats' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_cases_without_both_volumes_are_left_out() -> None:
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
