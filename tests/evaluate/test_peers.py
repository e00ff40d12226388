"""Property tests against the peers, on random non-empty shapes and spacings.

- DeepMind `surface-distance` (the definition of the area-weighted surface Dice): 1e-6. It
  crashes on empty masks under NumPy 2, so only non-empty masks are drawn.
- An all-pairs brute force for HD95 and ASD (surface = mask minus its face erosion).
- medpy's `hd95` and `asd`, which the published evaluator calls, for compat mode.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from bench.evaluate import prepare_mask, score_pair
from bench.evaluate.surface import surface_distances

# surface-distance 0.1 imports scipy.ndimage.filters and .morphology (deprecated namespaces).
pytestmark = pytest.mark.filterwarnings("ignore:Please import:DeprecationWarning")

surface_distance = pytest.importorskip("surface_distance")
medpy_binary = pytest.importorskip("medpy.metric.binary")

spacings = st.tuples(*[st.floats(0.3, 6.0).map(lambda s: round(s, 3))] * 3)


@st.composite
def mask_pairs(draw):
    """Two non-empty blobby masks on one small grid."""
    shape = draw(st.tuples(*[st.integers(3, 14)] * 3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    masks = []
    for _ in range(2):
        mask = rng.random(shape) < rng.uniform(0.02, 0.4)
        if rng.random() < 0.5:
            mask = ndimage.binary_dilation(mask)
        mask[tuple(rng.integers(0, shape))] = True  # never empty
        masks.append(mask)
    return masks[0], masks[1]


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
@given(mask_pairs(), spacings, st.lists(st.floats(0.0, 15.0), min_size=1, max_size=3))
def test_surface_dice_matches_deepmind(masks, spacing, extra_tolerances):
    reference, test = masks
    tolerances = tuple(sorted({0.0, 5.0, 10.0, *extra_tolerances, spacing[0], spacing[2]}))
    ours = surface_distances(
        prepare_mask(reference, spacing), prepare_mask(test, spacing), tolerances
    )
    theirs = surface_distance.compute_surface_distances(reference, test, spacing)
    for tolerance in tolerances:
        expected = surface_distance.compute_surface_dice_at_tolerance(theirs, tolerance)
        assert ours.surface_dice(tolerance) == pytest.approx(expected, abs=1e-6)


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
