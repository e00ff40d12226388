"""Property tests against the peers, on random shapes and spacings, empty masks included.

- DeepMind `surface-distance` (the definition of the area-weighted surface Dice): 1e-6, with
  extra tolerances. Where a mask is empty it reports a surface Dice of 0 (NaN when both are)
  and an infinite Hausdorff distance; we report NaN with the reason (UncertainSmallEmpty).
- An all-pairs brute force for HD95 and ASD (surface = mask minus its face erosion).
- medpy's `hd95` and `asd`, which the published evaluator calls, for compat mode.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from bench.evaluate import prepare_masks, score_pair
from bench.evaluate.distance import SEARCH_MM, search_plan, sqrt_thresholds, surface_summary
from tests.evaluate.deepmind import surface_metrics

medpy_binary = pytest.importorskip("medpy.metric.binary")

spacings = st.tuples(*[st.floats(0.3, 6.0).map(lambda s: round(s, 3))] * 3)


@st.composite
def mask_pairs(draw, empty=False):
    """Two blobby masks on one small grid; with `empty`, either may be empty."""
    shape = draw(st.tuples(*[st.integers(3, 14)] * 3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    masks = []
    for _ in range(2):
        mask = rng.random(shape) < rng.uniform(0.02, 0.4)
        if rng.random() < 0.5:
            mask = ndimage.binary_dilation(mask)
        mask[tuple(rng.integers(0, shape))] = True  # never empty...
        if empty and rng.random() < 0.4:
            mask[:] = False  # ...unless asked
        masks.append(mask)
    return masks[0], masks[1]


def surface_dices(reference, test, spacing, tolerances) -> list[float]:
    """Our surface Dice at any tolerances (the metrics use 0, 5 and 10 mm)."""
    a, b = prepare_masks([reference, test], spacing)
    shape, limit = reference.shape, max(SEARCH_MM, tolerances[-1] * (1 + 1e-6))
    _, _, dices = surface_summary(
        (a.voxel_surface, b.voxel_surface, a.surfels, b.surfels),
        (a.surfel_areas, b.surfel_areas),
        search_plan(spacing, shape, SEARCH_MM).compiled(),
        search_plan(spacing, shape, limit).compiled(),
        sqrt_thresholds(tolerances),
        np.asarray(spacing),
    )
    return dices.tolist()


@settings(max_examples=40, deadline=None)
@given(mask_pairs(), spacings, st.lists(st.floats(0.0, 15.0), min_size=1, max_size=3))
def test_surface_dice_matches_deepmind(masks, spacing, extra_tolerances):
    reference, test = masks
    tolerances = tuple(sorted({0.0, 5.0, 10.0, *extra_tolerances, spacing[0], spacing[2]}))
    theirs = surface_metrics(reference, test, spacing, tolerances)
    ours = surface_dices(reference, test, spacing, tolerances)
    for tolerance, value in zip(tolerances, ours, strict=True):
        assert value == pytest.approx(theirs[f"SDT{tolerance:.17g}"], abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(mask_pairs(empty=True), spacings)
def test_metrics_match_deepmind_and_empty_masks_follow_the_rules(masks, spacing):
    reference, test = masks
    ours = score_pair(reference, test, spacing)
    theirs = surface_metrics(reference, test, spacing)
    empty = [not m.any() for m in (reference, test)]
    if not any(empty):
        assert ours.nan_reason == ""
        for name in ("SDT0", "SDT5", "SDT10", "Dice"):
            assert getattr(ours, name) == pytest.approx(theirs[name], abs=1e-6)
        return
    # DeepMind: a surface Dice of 0 against an empty mask, NaN for two, no finite Hausdorff.
    if all(empty):
        assert math.isnan(theirs["SDT5"]) and math.isnan(theirs["Dice"])
        assert ours.nan_reason == "reference and test empty" and ours.VS == 1.0
    else:
        assert theirs["SDT0"] == theirs["SDT5"] == theirs["SDT10"] == theirs["Dice"] == 0.0
        assert ours.nan_reason == ("reference empty" if empty[0] else "test empty")
        assert ours.VS == 0.0
    assert math.isinf(theirs["HD95"])
    assert all(math.isnan(getattr(ours, n)) for n in ("SDT0", "SDT5", "SDT10", "Dice", "HD95"))
    # The non-empty reference's surface is DeepMind's, area for area.
    if not empty[0]:
        prepared = prepare_masks([reference], spacing)[0]
        assert np.allclose(np.sort(prepared.surfel_areas), np.sort(theirs["areas_reference"]))


def brute_force(reference: np.ndarray, test: np.ndarray, spacing) -> tuple[float, float]:
    def surface(mask):
        return np.argwhere(mask & ~ndimage.binary_erosion(mask))

    r, t = surface(reference), surface(test)
    d = np.sqrt((((r[:, None, :] - t[None, :, :]) * spacing) ** 2).sum(axis=-1))
    ref_to_test, test_to_ref = d.min(axis=1), d.min(axis=0)
    hd95 = max(np.percentile(ref_to_test, 95), np.percentile(test_to_ref, 95))
    asd = (ref_to_test.sum() + test_to_ref.sum()) / (ref_to_test.size + test_to_ref.size)
    return float(hd95), float(asd)


@settings(max_examples=40, deadline=None)
@given(mask_pairs(), spacings)
def test_hd95_and_asd_match_brute_force(masks, spacing):
    reference, test = masks
    metrics = score_pair(reference, test, spacing)
    hd95, asd = brute_force(reference, test, np.array(spacing))
    assert pytest.approx(hd95, rel=1e-9, abs=1e-9) == metrics.HD95
    assert pytest.approx(asd, rel=1e-9, abs=1e-9) == metrics.ASD
    dice = 2 * np.count_nonzero(reference & test) / (reference.sum() + test.sum())
    assert metrics.Dice == pytest.approx(dice)


@settings(max_examples=25, deadline=None)
@given(mask_pairs(), spacings)
def test_compat_matches_medpy(masks, spacing):
    reference, test = masks
    metrics = score_pair(reference, test, spacing, compat="use")
    # The published evaluator calls medpy with the test first.
    assert pytest.approx(medpy_binary.hd95(test, reference, spacing), abs=1e-9) == metrics.HD95
    assert pytest.approx(medpy_binary.asd(test, reference, spacing), abs=1e-9) == metrics.ASD
