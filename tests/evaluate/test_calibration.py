"""Calibration: known answers on synthetic cases, the AUC against scipy's Mann-Whitney U."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from bench.evaluate.calibration import (
    RATERS,
    TRUTH,
    bin_index,
    calibration,
    case_voxels,
    pooled_calibration,
    region_slices,
)
from bench.evaluate.image_level import mann_whitney_auc as auc


def test_probability_equal_to_agreement_has_ece_zero():
    rng = np.random.default_rng(0)
    raters = {r: rng.random((6, 8, 8)) < 0.4 for r in "ABC"}
    agreement = np.mean(list(raters.values()), axis=0)
    voxels = case_voxels(agreement, raters, (1.0, 1.0, 1.0))
    result = pooled_calibration([voxels])[RATERS]
    assert result.ece == pytest.approx(0.0, abs=1e-7)  # 1/3 and 2/3 stored as float32
    assert result.voxels == agreement.size  # the region is the whole (small) volume


def test_constant_on_half_labelled_region_gives_worked_out_ece():
    # Half the voxels labelled: with p = 0.5 everywhere the one filled bin holds mean p 0.5 and
    # observed 0.5, so ECE = 0; with p = 0.8 it is |0.8 - 0.5| = 0.3. AUC of a constant: 0.5.
    truth = np.zeros((4, 4, 4), dtype=bool)
    truth[:2] = True
    half = calibration(np.full(truth.shape, 0.5), truth, TRUTH)
    assert half.ece == 0.0 and half.auc == 0.5
    assert half.bin_count[5] == truth.size and half.bin_observed[5] == 0.5
    assert calibration(np.full(truth.shape, 0.8), truth, TRUTH).ece == pytest.approx(0.3)


def test_two_bins_worked_out():
    # p = 0.9 on 3 voxels of which 2 are lesion, p = 0.1 on 1 voxel that is not:
    # ECE = 3/4 * |0.9 - 2/3| + 1/4 * |0.1 - 0| = 0.175 + 0.025 = 0.2; AUC = (2 * 1 + 0) / 2 ...
    p = np.array([0.9, 0.9, 0.9, 0.1])
    y = np.array([1, 1, 0, 0])
    result = calibration(p, y, TRUTH)
    assert result.ece == pytest.approx(0.2)
    # positives (0.9, 0.9) against negatives (0.9, 0.1): wins 1 + 1, ties 0.5 + 0.5 -> 3 / 4
    assert result.auc == pytest.approx(0.75)


def test_bins_include_both_ends():
    assert bin_index(np.array([0.0, 0.0999, 0.1, 0.95, 1.0])).tolist() == [0, 0, 1, 9, 9]


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_mann_whitney(seed):
    rng = np.random.default_rng(seed)
    label = rng.random(300) < 0.3
    score = np.round(rng.random(300) + label * 0.3, 1)  # ties on purpose
    u = mannwhitneyu(score[label], score[~label]).statistic
    assert auc(score, label) == pytest.approx(u / (label.sum() * (~label).sum()), rel=1e-12)


def test_auc_undefined_with_one_class():
    assert np.isnan(auc(np.array([0.2, 0.7]), np.array([True, True])))


def test_region_is_the_grown_bounding_box():
    mask = np.zeros((20, 20, 20), dtype=bool)
    mask[10, 5:7, 12] = True
    box = region_slices([mask, np.zeros_like(mask)], (2.0, 1.0, 1.0), margin_mm=4.0)
    assert box == (slice(8, 13), slice(1, 11), slice(8, 17))
    assert region_slices([np.zeros_like(mask)], (1.0, 1.0, 1.0)) is None


def test_truth_target_only_when_every_case_has_one():
    raters = {"A": np.ones((2, 2, 2), dtype=bool)}
    with_truth = case_voxels(np.full((2, 2, 2), 0.7), raters, (1, 1, 1), truth=raters["A"])
    without = case_voxels(np.full((2, 2, 2), 0.7), raters, (1, 1, 1))
    assert set(pooled_calibration([with_truth])) == {TRUTH, RATERS}
    assert set(pooled_calibration([with_truth, without])) == {RATERS}
    pooled = pooled_calibration([with_truth, with_truth])[TRUTH]
    assert pooled.cases == 2 and pooled.voxels == 16 and pooled.ece == pytest.approx(0.3)


def test_probability_outside_unit_interval_is_refused():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        calibration(np.array([1.5]), np.array([1.0]), TRUTH)
