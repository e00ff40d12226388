"""Per-pair metrics on shapes whose answers are worked out by hand (no peer, no own output)."""

from __future__ import annotations

import math
from dataclasses import fields

import numpy as np
import pytest

from bench.errors import InputError
from bench.evaluate import PairMetrics, prepare_masks, score_pair, score_pairs, score_prepared
from bench.evaluate.distance import _percentile
from bench.evaluate.pair import MaskState, NanReason, reference_scored
from bench.metric_names import NAN_REASON_COLUMN, NUMERIC_COLUMNS

OVERLAP_AND_DISTANCE = ("Dice", "Precision", "Recall", "ASD", "HD95", "SDT0", "SDT5", "SDT10")


def volume(shape=(8, 12, 14)) -> np.ndarray:
    return np.zeros(shape, bool)


def test_record_fields_are_the_shared_vocabulary():
    assert tuple(f.name for f in fields(PairMetrics)) == (*NUMERIC_COLUMNS, NAN_REASON_COLUMN)


def test_identical_cubes_agree_perfectly():
    a = volume()
    a[2:6, 3:9, 4:10] = True
    m = score_pair(a, a.copy(), (5.0, 0.5, 0.5))
    assert (m.Dice, m.Precision, m.Recall, m.VS) == (1.0, 1.0, 1.0, 1.0)
    assert (m.AVD, m.HD95, m.ASD) == (0.0, 0.0, 0.0)
    assert (m.SDT0, m.SDT5, m.SDT10) == (1.0, 1.0, 1.0)
    # 4 * 6 * 6 voxels of 5 * 0.5 * 0.5 mm^3 = 144 * 1.25 mm^3 = 0.18 ml
    assert m.V_ref == pytest.approx(0.18) and m.V_test == pytest.approx(0.18)
    assert m.nan_reason == ""


def test_one_voxel_against_itself():
    a = volume()
    a[4, 5, 6] = True
    m = score_pair(a, a.copy(), (5.0, 0.45, 0.45))
    assert (m.Dice, m.HD95, m.ASD, m.SDT0, m.SDT5, m.SDT10) == (1.0, 0.0, 0.0, 1.0, 1.0, 1.0)
    assert m.nan_reason == ""


def test_two_single_voxels_three_voxels_apart():
    # Spacing (z, y, x) = (1, 1, 2) mm; the voxels differ by 3 along x: 6 mm centre to centre.
    a, b = volume(), volume()
    a[4, 5, 2] = True
    b[4, 5, 5] = True
    m = score_pair(a, b, (1.0, 1.0, 2.0))
    assert (m.Dice, m.Precision, m.Recall) == (0.0, 0.0, 0.0)
    assert pytest.approx(6.0) == m.HD95 and pytest.approx(6.0) == m.ASD
    # Surfels are the 8 corners of each voxel, all of one area. Corners of a sit at x = 2, 3
    # and of b at x = 5, 6 (corner grid): the facing corners are 2 steps = 4 mm apart, the
    # others 6 mm. So half the surface is within 5 mm, all within 10 mm, none at 0 mm.
    assert (m.SDT0, m.SDT5, m.SDT10) == (0.0, 0.5, 1.0)
    assert m.VS == 1.0 and m.AVD == 0.0


def test_touching_voxels_share_four_corners():
    a, b = volume(), volume()
    a[4, 5, 2] = True
    b[4, 5, 3] = True
    m = score_pair(a, b, (1.0, 1.0, 1.0))
    assert m.SDT0 == 0.5  # the shared face's 4 corners of 8, on both sides
    assert m.SDT5 == 1.0
    assert pytest.approx(1.0) == m.HD95 and pytest.approx(1.0) == m.ASD


def test_cube_shifted_in_plane():
    # n x n x n cube shifted by k voxels along x: TP = n^2 (n - k).
    n, k = 6, 2
    a, b = volume((10, 12, 14)), volume((10, 12, 14))
    a[2 : 2 + n, 3 : 3 + n, 3 : 3 + n] = True
    b[2 : 2 + n, 3 : 3 + n, 3 + k : 3 + k + n] = True
    m = score_pair(a, b, (3.0, 0.5, 0.5))
    assert m.Dice == pytest.approx((n - k) / n)
    assert m.Precision == pytest.approx((n - k) / n) and m.Recall == pytest.approx((n - k) / n)
    assert m.VS == 1.0 and m.AVD == 0.0


def test_concentric_cubes_distances():
    # Reference 2x6x6 voxels inside a test of 4x10x10 (one more voxel on each side), spacing
    # (z, y, x) = (4, 1, 1) mm. Every reference surface voxel sees the test surface straight
    # out of its nearest face; the in-plane faces are 2 mm away, the z faces 4 mm.
    a, b = volume((8, 14, 14)), volume((8, 14, 14))
    a[3:5, 4:10, 4:10] = True
    b[2:6, 2:12, 2:12] = True
    m = score_pair(a, b, (4.0, 1.0, 1.0))
    assert m.Dice == pytest.approx(2 * 72 / (72 + 400))
    assert m.Recall == 1.0 and m.Precision == pytest.approx(72 / 400)
    # Reference surface: both slices are whole faces (72 voxels). Each voxel's nearest test
    # surface voxel: the in-plane ring of the test at the same slice (2 voxels out from the
    # reference's ring, further in from its inside) or the test's cap 4 mm above/below.
    ys, xs = np.mgrid[4:10, 4:10]
    in_plane = np.minimum.reduce([ys - 2, 11 - ys, xs - 2, 11 - xs]).astype(float)
    ref_to_test = np.minimum(in_plane, 4.0).ravel().tolist() * 2
    # Test surface: 2 caps of 100 voxels and 2 rings of 36 voxels. A cap voxel's nearest
    # reference surface voxel is the reference slice one step in z (4 mm) plus the in-plane
    # gap to the 6x6 square; a ring voxel sees the reference ring 2 voxels in-plane.
    ys, xs = np.mgrid[2:12, 2:12]
    gap_y = np.maximum.reduce([4 - ys, ys - 9, np.zeros_like(ys)])
    gap_x = np.maximum.reduce([4 - xs, xs - 9, np.zeros_like(xs)])
    cap = np.sqrt(16.0 + gap_y**2 + gap_x**2).ravel().tolist()
    ring = np.hypot(gap_y, gap_x)[(ys == 2) | (ys == 11) | (xs == 2) | (xs == 11)]
    test_to_ref = cap * 2 + ring.tolist() * 2
    assert pytest.approx((sum(ref_to_test) + sum(test_to_ref)) / (72 + 272)) == m.ASD
    expected_hd95 = max(np.percentile(ref_to_test, 95), np.percentile(test_to_ref, 95))
    assert pytest.approx(expected_hd95) == m.HD95


def test_far_false_positive_separates_the_two_hd95_definitions():
    # Reference: one voxel. Test: that voxel plus one 20 mm away along y.
    a, b = volume((4, 30, 6)), volume((4, 30, 6))
    a[2, 3, 3] = True
    b[2, 3, 3] = True
    b[2, 23, 3] = True
    ours = score_pair(a, b, (2.0, 1.0, 1.0))
    # Directed: reference -> test [0]; test -> reference [0, 20]. numpy's linear percentile
    # of [0, 20] at 95 is 19 mm; ASD pools both surfaces: (0 + 0 + 20) / 3.
    assert pytest.approx(19.0) == ours.HD95 and pytest.approx(20 / 3) == ours.ASD
    published = score_pair(a, b, (2.0, 1.0, 1.0), compat="use")
    # medpy: percentile of the pooled [0, 20, 0] is 18 mm; ASD is test -> reference only.
    assert pytest.approx(18.0) == published.HD95 and pytest.approx(10.0) == published.ASD
    assert published.Dice == ours.Dice and published.SDT5 == ours.SDT5


def test_anisotropic_spacing_is_applied_per_axis():
    # One voxel each, one step apart along z (5 mm), then along x (0.45 mm).
    a, b, c = volume(), volume(), volume()
    a[3, 5, 5] = True
    b[4, 5, 5] = True
    c[3, 5, 6] = True
    assert pytest.approx(5.0) == score_pair(a, b, (5.0, 0.45, 0.45)).HD95
    assert pytest.approx(0.45) == score_pair(a, c, (5.0, 0.45, 0.45)).HD95


@pytest.mark.parametrize(
    ("ref_voxels", "test_voxels", "reason"),
    [
        (0, 3, "reference empty"),
        (3, 0, "test empty"),
        (0, 0, "reference and test empty"),
    ],
)
def test_empty_masks(ref_voxels, test_voxels, reason):
    a, b = volume(), volume()
    a[1, 1, :ref_voxels] = True
    b[5, 5, :test_voxels] = True
    m = score_pair(a, b, (2.0, 1.0, 1.0))  # 2 mm^3 voxels
    assert m.nan_reason == reason
    assert all(math.isnan(getattr(m, name)) for name in OVERLAP_AND_DISTANCE)
    assert m.V_ref == pytest.approx(ref_voxels * 0.002)
    assert m.V_test == pytest.approx(test_voxels * 0.002)
    assert pytest.approx(abs(ref_voxels - test_voxels) * 0.002) == m.AVD
    # One side empty: |R - T| / (R + T) = 1, so VS = 0; both empty: perfect agreement, VS = 1.
    assert (1.0 if ref_voxels == test_voxels == 0 else 0.0) == m.VS


def test_small_threshold():
    # 10 voxels of 50 mm^3 = 0.5 ml: "at or below 0.5 ml" is small; 11 voxels is not.
    a, b = volume(), volume()
    a[1, 1, :10] = True
    b[1, 1, :11] = True
    m = score_pair(a, b, (2.0, 5.0, 5.0), small_ml=0.5)
    assert m.nan_reason == "reference at or below 0.5 ml"
    assert math.isnan(m.Dice) and math.isnan(m.HD95)
    assert pytest.approx(1 - 1 / 21) == m.VS and pytest.approx(0.05) == m.AVD
    swapped = score_pair(b, a, (2.0, 5.0, 5.0), small_ml=0.5)
    assert swapped.nan_reason == "test at or below 0.5 ml"
    both = score_pair(a, a, (2.0, 5.0, 5.0), small_ml=0.5)
    assert both.nan_reason == "reference at or below 0.5 ml; test at or below 0.5 ml"
    assert both.VS == 1.0
    assert score_pair(b, b, (2.0, 5.0, 5.0), small_ml=0.5).Dice == 1.0


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32])
def test_integer_and_float_masks(dtype):
    a = volume()
    a[2:4, 2:4, 2:4] = True
    m = score_pair(a.astype(dtype), a.astype(dtype), (1, 1, 1))
    assert m.Dice == 1.0


def test_bad_input():
    a = volume()
    a[2, 2, 2] = True
    with pytest.raises(InputError, match="not binary"):
        score_pair(a.astype(np.uint8) * 2, a, (1, 1, 1))
    with pytest.raises(InputError, match="NaN"):
        score_pair(np.full(a.shape, np.nan, np.float32), a, (1, 1, 1))
    with pytest.raises(InputError, match="shape"):
        score_pair(a, a[:-1], (1, 1, 1))
    with pytest.raises(InputError, match="3D"):
        score_pair(a[0], a[0], (1, 1, 1))
    with pytest.raises(InputError, match="spacing"):
        score_pair(a, a, (1, 1))


@pytest.mark.parametrize("compat", ["off", "use"])
def test_pairs_and_their_swaps_score_as_if_alone(compat):
    # score_pairs shares one search between (A, B) and (B, A): every value must be the one
    # score_prepared gives the pair on its own, to the last bit.
    rng = np.random.default_rng(11)
    masks = {}
    for name, fill in (("A", 0.04), ("B", 0.05), ("C", 0.03)):
        mask = np.zeros((8, 30, 30), bool)
        mask[2:6, 5:25, 5:25] = rng.random((4, 20, 20)) < fill * 10
        masks[name] = mask
    masks["C"][6, 28, 28] = True  # a far voxel: the exact fallback
    spacing = (4.0, 0.7, 0.7)
    prepared = dict(zip(masks, prepare_masks(list(masks.values()), spacing), strict=True))
    pairs = (("A", "B"), ("B", "A"), ("A", "C"), ("C", "A"), ("B", "C"), ("C", "B"))
    together = score_pairs(prepared, pairs, compat=compat)
    for (reference, test), metrics in zip(pairs, together, strict=True):
        alone = prepare_masks([masks[reference], masks[test]], spacing)
        assert metrics == score_prepared(*alone, compat=compat)


def test_percentile_is_numpys():
    rng = np.random.default_rng(12)
    for n in (1, 2, 3, 20, 21, 1000):
        values = rng.random(n) * 10
        values[: n // 3] = np.round(values[: n // 3])  # ties
        for q in (0.0, 5.0, 50.0, 95.0, 99.9, 100.0):
            assert _percentile(values, q) == float(np.percentile(values, q))


def test_array_likes_are_accepted_and_ragged_lists_refused():
    a = volume()
    a[2:4, 2:4, 2:4] = True
    from_lists = score_pair(a.astype(int).tolist(), a.tolist(), [1.0, 1.0, 1.0])
    assert from_lists == score_pair(a, a, (1.0, 1.0, 1.0))
    with pytest.raises(InputError, match="reference is not an array of 0/1 values"):
        score_pair([[[0, 1]], [[0]]], a, (1, 1, 1))
    with pytest.raises(InputError, match="test has unsupported type"):
        score_pair(a, np.full(a.shape, "x"), (1, 1, 1))


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1e-4), (0.005, 0.00045, 0.00045), (5000, 450, 450)])
def test_spacing_in_the_wrong_unit_is_one_line(spacing):
    # Metres or micrometres given as millimetres: refused, not a MemoryError or OverflowError.
    a = volume()
    a[2:4, 2:4, 2:4] = True
    b = np.roll(a, 3, axis=2)
    expected = r"spacing \(z, y, x\) = .* mm is outside 0.01-50 mm"
    with pytest.raises(InputError, match=expected) as error:
        score_pair(a, b, spacing)
    assert "\n" not in str(error.value) and "millimetres" in str(error.value)


@pytest.mark.parametrize("spacing", [(0.01, 0.01, 0.01), (50.0, 50.0, 0.01), (1.0, 50.0, 1.0)])
def test_spacing_at_the_limits_is_scored(spacing):
    # Single voxels 3 steps apart along x: the distance is 3 steps, however fine or coarse.
    a, b = volume(), volume()
    a[4, 5, 2] = True
    b[4, 5, 5] = True
    m = score_pair(a, b, spacing)
    assert pytest.approx((3 * spacing[2], 3 * spacing[2])) == (m.HD95, m.ASD)


@pytest.mark.parametrize(
    ("reason", "reference", "test"),
    [
        ("", MaskState.SCORED, MaskState.SCORED),
        ("reference empty", MaskState.EMPTY, MaskState.SCORED),
        ("test empty", MaskState.SCORED, MaskState.EMPTY),
        ("reference and test empty", MaskState.EMPTY, MaskState.EMPTY),
        ("reference at or below 0.5 ml", MaskState.SMALL, MaskState.SCORED),
        ("reference at or below 0.5 ml; test empty", MaskState.SMALL, MaskState.EMPTY),
        ("reference empty; test at or below 2.5 ml", MaskState.EMPTY, MaskState.SMALL),
    ],
)
def test_nan_reason_round_trip(reason, reference, test):
    parsed = NanReason.parse(reason)
    assert (parsed.reference, parsed.test) == (reference, test)
    assert str(parsed) == reason
    assert reference_scored(reason) == (reference is MaskState.SCORED)


@pytest.mark.parametrize(
    "text", ["reference missing", "reference: empty", "test empty; test empty"]
)
def test_an_unknown_nan_reason_is_an_error_not_a_scored_reference(text):
    with pytest.raises(InputError, match="is not a nan_reason the evaluator writes"):
        reference_scored(text)
