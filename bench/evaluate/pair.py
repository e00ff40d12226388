"""Score one (reference, test) pair of masks into a typed record, following UncertainSmallEmpty.

Volume metrics (V_ref, V_test, AVD, VS) are always defined. Overlap and distance metrics are
NaN when either mask is at or below the small-volume threshold (0 ml by default: empty), and
`nan_reason` says why, so a NaN is never silent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from bench.errors import InputError
from bench.evaluate import _kernels
from bench.evaluate._deepmind_tables import surfel_area_table
from bench.evaluate.compat import Compat, asd_mm, hd95_mm
from bench.evaluate.distance import SEARCH_MM, _offsets, _sqrt_thresholds
from bench.evaluate.exact import BRUTE_FORCE_PAIRS
from bench.evaluate.masks import (
    MAX_PARTS,
    MIN_GAP,
    PreparedMask,
    _scanned,
    overlap_voxels,
    prepare_masks,
    voxel_volume_ml,
)
from bench.evaluate.surface import SDT_TOLERANCES_MM, SurfaceDistances, surface_distances

NAN = float("nan")
# Every nan_reason about the reference starts with this; image-level detection reads it.
REFERENCE_REASON_PREFIX = "reference "
# Surface Dice names by ascending tolerance, the order `surface_dices` returns.
_SDT_ASCENDING = sorted(SDT_TOLERANCES_MM, key=SDT_TOLERANCES_MM.__getitem__)


@dataclass(frozen=True)
class PairMetrics:
    """Per-case metrics of one pair, named as in bench.metric_names (volumes in ml, mm)."""

    VS: float
    AVD: float
    Dice: float
    Precision: float
    Recall: float
    ASD: float
    HD95: float
    SDT0: float
    SDT5: float
    SDT10: float
    V_ref: float
    V_test: float
    nan_reason: str = ""

    def as_dict(self) -> dict[str, float | str]:
        return asdict(self)


def _side_reason(side: str, voxels: int, volume_ml: float, small_ml: float) -> str | None:
    if voxels == 0:
        return f"{side} empty"
    if volume_ml <= small_ml:
        return f"{side} at or below {small_ml:g} ml"
    return None


def nan_reason(ref_voxels: int, test_voxels: int, voxel_ml: float, small_ml: float) -> str:
    """Why overlap and distance metrics are undefined for this pair ("" when they are not)."""
    if ref_voxels == 0 and test_voxels == 0:
        return "reference and test empty"
    reasons = [
        _side_reason("reference", ref_voxels, ref_voxels * voxel_ml, small_ml),
        _side_reason("test", test_voxels, test_voxels * voxel_ml, small_ml),
    ]
    return "; ".join(r for r in reasons if r)


def reference_scored(reason: str) -> bool:
    """Whether the reference was above the small threshold (its overlap metrics defined)."""
    return not str(reason).startswith(REFERENCE_REASON_PREFIX)


def volumetric_similarity(ref_voxels: int, test_voxels: int) -> float:
    """1 - |FN - FP| / (2TP + FP + FN) = 1 - |R - T| / (R + T); 1.0 when both are empty.

    Both empty is perfect volume agreement (both say "no lesion"), and VS is the metric the
    UncertainSmallEmpty paper recommends for rewarding empty agreement.
    """
    if ref_voxels + test_voxels == 0:
        return 1.0
    return 1.0 - abs(ref_voxels - test_voxels) / (ref_voxels + test_voxels)


def _volumes(n_ref: int, n_test: int, voxel_ml: float) -> dict[str, float]:
    """The volume metrics, defined for every pair."""
    return {
        "VS": volumetric_similarity(n_ref, n_test),
        "AVD": abs(n_ref - n_test) * voxel_ml,
        "V_ref": n_ref * voxel_ml,
        "V_test": n_test * voxel_ml,
    }


def _undefined(volumes: dict[str, float], reason: str) -> PairMetrics:
    """A pair whose overlap and distance metrics are undefined (NaN), and why."""
    undefined = dict.fromkeys(("Dice", "Precision", "Recall", "ASD", "HD95"), NAN)
    undefined.update(dict.fromkeys(SDT_TOLERANCES_MM, NAN))
    return PairMetrics(**volumes, **undefined, nan_reason=reason)


def score_prepared(
    reference: PreparedMask,
    test: PreparedMask,
    small_ml: float = 0.0,
    compat: Compat | str = Compat.OFF,
    memo: dict | None = None,
) -> PairMetrics:
    """Score two prepared masks (see `prepare_mask`); prepare each mask once, pair it often.

    `memo` (see `score_pairs`) keeps the overlap and surface distances of scored pairs, which
    the swapped pair reuses.
    """
    compat = Compat(compat)
    if reference.spacing_zyx_mm != test.spacing_zyx_mm or reference.shape_zyx != test.shape_zyx:
        raise ValueError("reference and test must be prepared on the same grid")
    voxel_ml = voxel_volume_ml(reference.spacing_zyx_mm)
    n_ref, n_test = reference.voxels, test.voxels
    volumes = _volumes(n_ref, n_test, voxel_ml)
    reason = nan_reason(n_ref, n_test, voxel_ml, small_ml)
    if reason:
        return _undefined(volumes, reason)

    tp, distances = _compared(reference, test, memo)
    return PairMetrics(
        **volumes,
        Dice=2 * tp / (n_ref + n_test),
        Precision=tp / n_test,
        Recall=tp / n_ref,
        ASD=asd_mm(distances.ref_to_test_mm, distances.test_to_ref_mm, compat),
        HD95=hd95_mm(distances.ref_to_test_mm, distances.test_to_ref_mm, compat),
        **dict(zip(_SDT_ASCENDING, distances.surface_dices(), strict=True)),
    )


def _compared(
    reference: PreparedMask, test: PreparedMask, memo: dict | None
) -> tuple[int, SurfaceDistances]:
    """Overlap (TP) and surface distances of a pair, or of its swap from `memo`: both are
    symmetric, so the swap's metrics come out bit for bit as if computed afresh."""
    if memo is not None and (id(test), id(reference)) in memo:
        tp, distances = memo[(id(test), id(reference))]
        return tp, distances.swapped()
    tp = overlap_voxels(reference, test)
    distances = surface_distances(reference, test, tuple(SDT_TOLERANCES_MM.values()))
    if memo is not None:
        memo[(id(reference), id(test))] = (tp, distances)
    return tp, distances


def score_pairs(
    prepared: Mapping[str, PreparedMask],
    pairs: Sequence[tuple[str, str]],
    small_ml: float = 0.0,
    compat: Compat | str = Compat.OFF,
) -> list[PairMetrics]:
    """`score_prepared` of every (reference, test) pair of prepared masks by name.

    A pair and its swap (A against B, B against A: every rater pair of a study) share one
    overlap count and one surface-distance search; each mask's search index is built once.
    """
    memo: dict = {}
    return [
        score_prepared(prepared[reference], prepared[test], small_ml, compat, memo)
        for reference, test in pairs
    ]


def check_binary(mask: np.ndarray, name: str = "mask", case: str | None = None, file=None) -> None:
    """Raise InputError unless `mask` is a 3D array of 0/1 (bool, integer or float).

    One pass for integer masks: viewed as unsigned, a negative value is large too.
    """
    if mask.ndim != 3:
        raise InputError(f"{name} must be 3D (z, y, x), got shape {mask.shape}", case, file)
    kind = mask.dtype.kind
    if kind == "b":
        return
    if kind in "iu":
        if mask.view(mask.dtype.str.replace("i", "u")).max(initial=0) <= 1:
            return
    elif kind == "f":
        if not np.isfinite(mask).all():
            raise InputError(f"{name} contains NaN or Inf", case, file)
        if np.isin(mask, (0, 1)).all():
            return
    else:
        raise InputError(f"{name} has unsupported type {mask.dtype}", case, file)
    low, high = mask.min(), mask.max()
    raise InputError(f"{name} is not binary (values from {low:g} to {high:g})", case, file)


def as_bool(mask: np.ndarray) -> np.ndarray:
    """A checked 0/1 mask as bool, without a copy for one-byte integers."""
    if mask.dtype.kind == "b":
        return mask
    if mask.dtype.itemsize == 1 and mask.flags.c_contiguous:
        return mask.view(bool)
    return mask != 0


def check_spacing(spacing_zyx_mm) -> tuple[float, float, float]:
    spacing = tuple(float(s) for s in spacing_zyx_mm)
    if len(spacing) != 3 or not all(math.isfinite(s) and s > 0 for s in spacing):
        raise InputError(f"spacing_zyx_mm must be 3 positive numbers, got {spacing_zyx_mm!r}")
    return spacing  # type: ignore[return-value]


def score_pair(
    reference: np.ndarray,
    test: np.ndarray,
    spacing_zyx_mm: tuple[float, float, float],
    small_ml: float = 0.0,
    compat: Compat | str = Compat.OFF,
) -> PairMetrics:
    """Score a reference and a test mask, (z, y, x) arrays on one grid with spacing in mm.

    The spacing must be in array-axis order (z, y, x): take it from `Geometry.spacing_zyx_mm`,
    never type it, since an (x, y, z) spacing silently scales every distance.
    """
    spacing = check_spacing(spacing_zyx_mm)
    check_binary(reference, "reference")
    check_binary(test, "test")
    if reference.shape != test.shape:
        raise InputError(f"test shape {test.shape} differs from reference shape {reference.shape}")
    reference, test = as_bool(reference), as_bool(test)
    scored = _score_in_one_call(reference, test, spacing, small_ml, Compat(compat))
    if scored is not None:
        return scored
    prepared_reference, prepared_test = prepare_masks([reference, test], spacing)
    return score_prepared(prepared_reference, prepared_test, small_ml, compat)


@lru_cache(maxsize=32)
def _one_call_plan(spacing: tuple[float, float, float]) -> tuple | None:
    """The arguments of `_kernels.score_pair_once` that depend on the spacing only, as
    `pair_distances` makes them (None where its compiled search does not apply); cached:
    one lookup per pair instead of a dozen small numpy steps, each slow from cold caches."""
    tolerances = tuple(sorted(SDT_TOLERANCES_MM.values()))
    exact = _offsets(spacing, SEARCH_MM)
    classes = _offsets(spacing, max(SEARCH_MM, tolerances[-1] * (1 + 1e-6)))
    if exact.run != 2 or max(exact.reach[2], classes.reach[2]) + 1 >= 2**16:
        return None
    return (
        exact.compiled(),
        classes.compiled(),
        _sqrt_thresholds(tolerances),
        np.asarray(spacing),
        100 * BRUTE_FORCE_PAIRS,
    )


def _score_in_one_call(
    reference: np.ndarray,
    test: np.ndarray,
    spacing: tuple[float, float, float],
    small_ml: float,
    compat: Compat,
) -> PairMetrics | None:
    """`score_prepared(*prepare_masks([reference, test]))`, value for value, from one compiled
    call (`_kernels.score_pair_once`); None where that does not apply (no numba, run axis not
    x, a search left for a KD-tree): the caller takes the general path.

    A single pair needs no prepared masks to keep, and after the one pass over both volumes
    every further Python or numpy step runs from cold caches: at 2 ml the steps between the
    compiled kernels, and the reducers after them, cost about half as much as the pass.
    """
    views = _scanned(reference), _scanned(test)
    plan = _one_call_plan(spacing)
    if views[0] is None or views[1] is None or plan is None:
        return None
    (words_r, bytes_r), (words_t, bytes_t) = views
    if words_r.dtype != words_t.dtype:  # one kind of view for both
        words_r, words_t = bytes_r, bytes_t
    voxel_ml = voxel_volume_ml(spacing)
    n_ref, n_test, tp, searched, hd95, asd, dices = _kernels.score_pair_once(
        words_r,
        bytes_r,
        words_t,
        bytes_t,
        surfel_area_table(spacing),
        MIN_GAP,
        MAX_PARTS,
        voxel_ml,
        float(small_ml),
        *plan,
    )
    volumes = _volumes(n_ref, n_test, voxel_ml)
    reason = nan_reason(n_ref, n_test, voxel_ml, small_ml)
    if reason:
        return _undefined(volumes, reason)
    if not searched:
        return None
    if compat is Compat.USE:  # `hd95_mm`, `asd_mm`: pooled HD95, test-to-reference ASD
        hd95_value, asd_value = float(hd95[2]), float(asd[1])
    else:  # the larger of the two directions' HD95, ASD over both surfaces
        hd95_value, asd_value = max(float(hd95[0]), float(hd95[1])), float(asd[0])
    return PairMetrics(
        **volumes,
        Dice=2 * tp / (n_ref + n_test),
        Precision=tp / n_test,
        Recall=tp / n_ref,
        ASD=asd_value,
        HD95=hd95_value,
        **dict(zip(_SDT_ASCENDING, dices.tolist(), strict=True)),
    )
