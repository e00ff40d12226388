"""Lesion-wise detection: known answers on hand-built masks, a brute-force oracle and panoptica
on random ones, all under one rule (26-connected lesions, one-to-one matches at IoU > 0.5)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from bench.evaluate import prepare_masks, score_pair, score_pairs
from bench.evaluate.lesions import match_lesions
from bench.metric_names import LESION_NAMES, PER_CASE_COLUMNS
from bench.stats.per_case import read_per_case_csv

SPACING = (1.0, 1.0, 1.0)


def lesion_counts(reference, test, spacing=SPACING) -> dict[str, float]:
    metrics = score_pair(reference, test, spacing).as_dict()
    return {k: metrics[k] for k in LESION_NAMES}


def grid(shape=(24, 24, 24)) -> np.ndarray:
    return np.zeros(shape, np.uint8)


def test_two_lesions_found_one_missed_one_false_positive():
    reference, test = grid(), grid()
    reference[2:6, 2:6, 2:6] = reference[12:16, 2:6, 2:6] = reference[2:5, 15:18, 15:18] = 1
    test[2:6, 2:6, 2:6] = 1  # the first, exactly
    test[12:16, 2:6, 3:6] = 1  # the second, IoU 0.75
    test[18:21, 18:21, 2:5] = 1  # touching no reference lesion
    # the third (2:5, 15:18, 15:18) is missed
    found = lesion_counts(reference, test)
    assert (found["LesionTP"], found["LesionFP"], found["LesionFN"]) == (2, 1, 1)
    assert found["LesionF1"] == pytest.approx(4 / 6)
    assert found["LesionCountDiff"] == 0


def test_a_lesion_split_in_two_halves_is_a_miss_and_two_false_positives():
    reference, test = grid(), grid()
    reference[4:12, 4:8, 4:8] = 1
    test[4:8, 4:8, 4:8] = test[9:12, 4:8, 4:8] = 1  # IoU 0.5 (not above) and 0.375
    found = lesion_counts(reference, test)
    assert (found["LesionTP"], found["LesionFP"], found["LesionFN"]) == (0, 2, 1)
    assert found["LesionF1"] == 0.0 and found["LesionCountDiff"] == 1


def test_a_split_whose_larger_part_covers_most_of_the_lesion_is_found():
    reference, test = grid(), grid()
    reference[4:12, 4:8, 4:8] = 1
    test[4:10, 4:8, 4:8] = test[11:12, 4:8, 4:8] = 1  # IoU 0.75 and 0.125
    found = lesion_counts(reference, test)
    assert (found["LesionTP"], found["LesionFP"], found["LesionFN"]) == (1, 1, 0)
    assert found["LesionF1"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    "second", [(slice(4, 6), slice(4, 6), slice(4, 6)), (slice(4, 6), slice(4, 6), slice(1, 3))]
)
def test_lesions_touching_at_a_corner_or_an_edge_are_one_lesion(second):
    """26-connectivity: cubes meeting at a corner (or an edge) are one lesion, so a test mask
    holding only the first cube matches nothing (IoU 0.5) and the count difference is 0."""
    reference = grid()
    reference[2:4, 2:4, 2:4] = 1
    reference[second] = 1
    assert ndimage.label(reference)[1] == 2  # apart under face connectivity
    found = lesion_counts(reference, reference)
    assert (found["LesionTP"], found["LesionFP"], found["LesionFN"]) == (1, 0, 0)
    test = grid()
    test[2:4, 2:4, 2:4] = 1
    found = lesion_counts(reference, test)
    assert (found["LesionTP"], found["LesionFP"], found["LesionFN"]) == (0, 1, 1)


def test_reference_lesions_are_counted_by_volume_bin():
    """Voxels of 10 mm^3: 50 voxels are 0.5 ml, 300 are 3 ml, 1200 are 12 ml."""
    spacing = (2.5, 2.0, 2.0)
    reference, test = grid((40, 40, 40)), grid((40, 40, 40))
    reference[1:3, 1:6, 1:6] = 1  # 50 voxels: found
    reference[1:3, 20:25, 20:25] = 1  # 50 voxels: missed
    reference[10:22, 1:6, 1:6] = 1  # 300 voxels: missed
    reference[25:37, 10:20, 28:38] = 1  # 1200 voxels: found
    test[1:3, 1:6, 1:6] = 1
    test[25:37, 10:20, 29:38] = 1
    found = lesion_counts(reference, test, spacing)
    assert found == {
        **found,
        "LesionTP_lt1ml": 1,
        "LesionFN_lt1ml": 1,
        "LesionTP_1to10ml": 0,
        "LesionFN_1to10ml": 1,
        "LesionTP_gt10ml": 1,
        "LesionFN_gt10ml": 0,
    }
    assert found["LesionCountDiff"] == 2


def test_empty_masks():
    reference, test = grid(), grid()
    found = lesion_counts(reference, test)
    assert math.isnan(found["LesionF1"])
    assert all(v == 0 for k, v in found.items() if k != "LesionF1")
    test[3:5, 3:5, 3:5] = 1
    found = lesion_counts(reference, test)
    assert (found["LesionFP"], found["LesionF1"], found["LesionCountDiff"]) == (1, 0.0, 1)


def random_masks(seed: int, shape=(28, 30, 26)) -> tuple[np.ndarray, np.ndarray]:
    """A reference of smooth blobs, and a test that moves, grows or shrinks them and adds some:
    IoUs spread around the 0.5 threshold."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal(shape), rng.uniform(2.0, 3.5))
    reference = field > np.quantile(field, rng.uniform(0.9, 0.98))
    test = np.roll(reference, tuple(rng.integers(-1, 2, 3)), axis=(0, 1, 2))
    if rng.random() < 0.5:
        test = ndimage.binary_dilation(test) if rng.random() < 0.5 else ndimage.binary_erosion(test)
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), 2.0)
    test |= noise > np.quantile(noise, 0.997)
    return reference.astype(np.uint8), test.astype(np.uint8)


def brute_force(reference: np.ndarray, test: np.ndarray) -> tuple[int, int, int, list, list]:
    """Every pair of components, IoU on whole-volume boolean masks, a greedy one-to-one match in
    descending IoU above 0.5; (TP, FP, FN, reference lesion sizes, matched flags)."""
    full = np.ones((3, 3, 3), bool)
    ref_labels, n_ref = ndimage.label(reference, full)
    test_labels, n_test = ndimage.label(test, full)
    candidates = []
    for i in range(1, n_ref + 1):
        for j in range(1, n_test + 1):
            a, b = ref_labels == i, test_labels == j
            iou = (a & b).sum() / (a | b).sum()
            if iou > 0.5:
                candidates.append((iou, i, j))
    taken_ref, taken_test = set(), set()
    for _, i, j in sorted(candidates, reverse=True):
        if i not in taken_ref and j not in taken_test:
            taken_ref.add(i)
            taken_test.add(j)
    tp = len(taken_ref)
    sizes = [int((ref_labels == i).sum()) for i in range(1, n_ref + 1)]
    matched = [i in taken_ref for i in range(1, n_ref + 1)]
    return tp, n_test - tp, n_ref - tp, sizes, matched


@pytest.mark.parametrize("seed", range(12))
def test_random_cases_agree_with_a_brute_force_oracle(seed):
    reference, test = random_masks(seed)
    tp, fp, fn, sizes, matched = brute_force(reference, test)
    spacing = (3.0, 2.0, 2.0)  # 12 mm^3 voxels: lesions of every volume bin
    found = lesion_counts(reference, test, spacing)
    assert (found["LesionTP"], found["LesionFP"], found["LesionFN"]) == (tp, fp, fn)
    volumes, matched = np.array(sizes) * 12 / 1000, np.array(matched, bool)
    for name, in_bin in (
        ("lt1ml", volumes < 1),
        ("1to10ml", (volumes >= 1) & (volumes <= 10)),
        ("gt10ml", volumes > 10),
    ):
        assert found[f"LesionTP_{name}"] == (in_bin & matched).sum()
        assert found[f"LesionFN_{name}"] == (in_bin & ~matched).sum()


def test_random_cases_agree_with_panoptica():
    """panoptica's default for semantic input (connected components by cc3d, 26-connectivity
    in 3D; naive one-to-one threshold matching at IoU 0.5), with the threshold strict: its
    default matches at IoU >= 0.5, where a lesion cut in two exact halves has two candidates."""
    panoptica = pytest.importorskip(
        "panoptica", reason="panoptica is missing (make install adds it; pyproject: peers)"
    )
    evaluator = panoptica.Panoptica_Evaluator(
        expected_input=panoptica.InputType.SEMANTIC,
        instance_approximator=panoptica.ConnectedComponentsInstanceApproximator(),
        instance_matcher=panoptica.NaiveThresholdMatching(strict_threshold=True),
        verbose=False,
    )
    checked = 0
    for seed in range(100, 130):
        reference, test = random_masks(seed)
        result = evaluator.evaluate(test, reference, verbose=False)["ungrouped"]
        found = lesion_counts(reference, test)
        assert (found["LesionTP"], found["LesionFP"], found["LesionFN"]) == (
            result.tp,
            result.fp,
            result.fn,
        ), f"seed {seed}"
        assert found["LesionF1"] == pytest.approx(result.rq), f"seed {seed}"
        checked += result.tp > 0 and result.fp + result.fn > 0
    assert checked >= 20  # most cases have matches and errors both


def test_a_swapped_pair_shares_the_matching_and_swaps_its_errors():
    reference, test = random_masks(7)
    prepared = dict(zip("rt", prepare_masks([reference, test], SPACING), strict=True))
    forward, backward = score_pairs(prepared, [("r", "t"), ("t", "r")])
    assert (forward.LesionTP, forward.LesionFP, forward.LesionFN) == (
        backward.LesionTP,
        backward.LesionFN,
        backward.LesionFP,
    )
    direct = score_pair(test, reference, SPACING)
    assert direct.as_dict() == pytest.approx(backward.as_dict(), nan_ok=True)
    match = match_lesions(prepared["r"], prepared["t"], 0.001)
    assert match.ref_matched.sum() == match.test_matched.sum() == forward.LesionTP


@pytest.mark.parametrize("axis", range(3))
def test_a_lesion_one_voxel_thick_along_two_axes_is_found(axis):
    """A box of shape (n, 1, 1) cut from the mask: cc3d 4.1.1 misses it in a strided view."""
    reference = grid()
    line = [3, 3, 3]
    line[axis] = slice(2, 6)
    reference[tuple(line)] = 1
    found = lesion_counts(reference, reference)
    assert (found["LesionTP"], found["LesionFP"], found["LesionFN"]) == (1, 0, 0)


def test_a_per_case_csv_written_before_lesion_counting_reads_with_them_nan(tmp_path):
    reference, test = random_masks(3)
    row = {
        "case": "c1",
        "reference": "A",
        "test": "M",
        **score_pair(reference, test, SPACING).as_dict(),
    }
    path = tmp_path / "old.csv"
    pd.DataFrame([row]).drop(columns=list(LESION_NAMES)).to_csv(path, index=False)
    table = read_per_case_csv(path)
    assert tuple(table.columns) == PER_CASE_COLUMNS
    assert table.loc[:, list(LESION_NAMES)].isna().all().all()
    pd.DataFrame([row]).to_csv(path, index=False)
    assert read_per_case_csv(path).loc[0, "LesionTP"] == row["LesionTP"]
