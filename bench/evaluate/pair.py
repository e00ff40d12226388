"""Score one (reference, test) pair of masks into a typed record, following UncertainSmallEmpty.

Volume metrics (V_ref, V_test, AVD, VS) are always defined. Overlap and distance metrics are
NaN when either mask is at or below the small-volume threshold (0 ml by default: empty), and
`nan_reason` says why, so a NaN is never silent.

Like DeepMind's `surface-distance`, two stages: `distance.surface_summary` finds every surface
distance of a pair once and reduces it (percentiles, sums, area within each tolerance);
`_surface_metrics` turns that into HD95, ASD and the surface Dice under either definition.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import Enum

import numpy as np

from bench.errors import InputError
from bench.evaluate.distance import SEARCH_MM, search_plan, sqrt_thresholds, surface_summary
from bench.evaluate.lesions import LesionMatch, match_lesions
from bench.evaluate.masks import (
    PreparedMask,
    check_spacing,
    overlap_voxels,
    prepare_masks,
    voxel_volume_ml,
)

NAN = float("nan")
# The surface Dice tolerances, keyed by the metric names of bench.metric_names.
SDT_TOLERANCES_MM: dict[str, float] = {"SDT0": 0.0, "SDT5": 5.0, "SDT10": 10.0}
_SDT_ASCENDING = sorted(SDT_TOLERANCES_MM, key=SDT_TOLERANCES_MM.__getitem__)


class Compat(str, Enum):
    """Which HD95 and ASD to report. `OFF` (default): the paper's Table 4, HD95 the larger of
    the two directed 95th percentiles, ASD over both surfaces. `USE`: the published
    UncertainSmallEmpty evaluator's medpy calls (test first), HD95 of both directions pooled,
    ASD from the test surface only; with a far false positive the two HD95 differ by an
    order of magnitude, so the choice is explicit."""

    OFF = "off"
    USE = "use"


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
    # Lesion-wise detection (bench.evaluate.lesions): defined whenever either mask has a
    # lesion, whatever the small-volume threshold (small lesions are what they count).
    LesionTP: float
    LesionFP: float
    LesionFN: float
    LesionF1: float
    LesionCountDiff: float
    LesionTP_lt1ml: float
    LesionFN_lt1ml: float
    LesionTP_1to10ml: float
    LesionFN_1to10ml: float
    LesionTP_gt10ml: float
    LesionFN_gt10ml: float
    nan_reason: str = ""

    def as_dict(self) -> dict[str, float | str]:
        return asdict(self)


class MaskState(Enum):
    """One side of a pair: scored, or why its overlap and distance metrics are undefined."""

    SCORED = "scored"
    EMPTY = "empty"
    SMALL = "small"


@dataclass(frozen=True)
class NanReason:
    """Why a pair's overlap and distance metrics are undefined; `str()` is the `nan_reason`
    column ("" when they are defined) and `parse` reads it back."""

    reference: MaskState
    test: MaskState
    small_ml: float = 0.0

    @classmethod
    def of(cls, ref_voxels: int, test_voxels: int, voxel_ml: float, small_ml: float) -> NanReason:
        def state(voxels: int) -> MaskState:
            if voxels == 0:
                return MaskState.EMPTY
            return MaskState.SMALL if voxels * voxel_ml <= small_ml else MaskState.SCORED

        return cls(state(ref_voxels), state(test_voxels), small_ml)

    def __str__(self) -> str:
        if self.reference is self.test is MaskState.EMPTY:
            return "reference and test empty"
        parts = []
        for side, state in (("reference", self.reference), ("test", self.test)):
            if state is MaskState.EMPTY:
                parts.append(f"{side} empty")
            elif state is MaskState.SMALL:
                parts.append(f"{side} at or below {self.small_ml:g} ml")
        return "; ".join(parts)

    @classmethod
    def parse(cls, text: str) -> NanReason:
        """The reason a `nan_reason` text gives; InputError for text the evaluator never writes
        (a per-case table from elsewhere), rather than a guess."""
        if text == "reference and test empty":
            return cls(MaskState.EMPTY, MaskState.EMPTY)
        states = {"reference": MaskState.SCORED, "test": MaskState.SCORED}
        small_ml = 0.0
        for part in text.split("; ") if text else []:
            found = _REASON_PART.fullmatch(part)
            if found is None or states.get(found["side"]) is not MaskState.SCORED:
                raise InputError(
                    f"per-case table: {text!r} is not a nan_reason the evaluator writes"
                )
            states[found["side"]] = MaskState.SMALL if found["small"] else MaskState.EMPTY
            small_ml = float(found["small"] or small_ml)
        return cls(states["reference"], states["test"], small_ml)


_REASON_PART = re.compile(r"(?P<side>reference|test) (?:empty|at or below (?P<small>\S+) ml)")


def nan_reason(ref_voxels: int, test_voxels: int, voxel_ml: float, small_ml: float) -> str:
    """Why overlap and distance metrics are undefined for this pair ("" when they are not)."""
    return str(NanReason.of(ref_voxels, test_voxels, voxel_ml, small_ml))


def reference_scored(reason: str) -> bool:
    """Whether the reference was above the small threshold (its overlap metrics defined)."""
    return NanReason.parse(str(reason)).reference is MaskState.SCORED


def volumetric_similarity(ref_voxels: int, test_voxels: int) -> float:
    """1 - |FN - FP| / (2TP + FP + FN) = 1 - |R - T| / (R + T); 1.0 when both are empty.

    Both empty is perfect volume agreement (both say "no lesion"), and VS is the metric the
    UncertainSmallEmpty paper recommends for rewarding empty agreement.
    """
    if ref_voxels + test_voxels == 0:
        return 1.0
    return 1.0 - abs(ref_voxels - test_voxels) / (ref_voxels + test_voxels)


@dataclass(frozen=True)
class SurfaceSummary:
    """`distance.surface_summary` of a pair: what HD95, ASD and the surface Dice read."""

    hd95_ref_to_test: float
    hd95_test_to_ref: float
    hd95_pooled: float
    sum_ref_to_test: float  # mm, over the reference's surface voxels
    sum_test_to_ref: float
    ref_surface: int  # surface voxels
    test_surface: int
    surface_dices: tuple[float, ...]  # by ascending tolerance

    def swapped(self) -> SurfaceSummary:
        """The same pair seen from the other mask: a pair and its swap share one search."""
        return SurfaceSummary(
            self.hd95_test_to_ref,
            self.hd95_ref_to_test,
            self.hd95_pooled,
            self.sum_test_to_ref,
            self.sum_ref_to_test,
            self.test_surface,
            self.ref_surface,
            self.surface_dices,
        )


def _summarise(reference: PreparedMask, test: PreparedMask) -> SurfaceSummary:
    spacing, shape = reference.spacing_zyx_mm, reference.shape_zyx
    tolerances = tuple(sorted(SDT_TOLERANCES_MM.values()))
    percentiles, sums, dices = surface_summary(
        (reference.voxel_surface, test.voxel_surface, reference.surfels, test.surfels),
        (reference.surfel_areas, test.surfel_areas),
        search_plan(spacing, shape, SEARCH_MM).compiled(),
        search_plan(spacing, shape, max(SEARCH_MM, tolerances[-1] * (1 + 1e-6))).compiled(),
        sqrt_thresholds(tolerances),
        np.asarray(spacing),
    )
    return SurfaceSummary(
        *percentiles.tolist(),
        *sums.tolist(),
        reference.voxel_surface.shape[1],
        test.voxel_surface.shape[1],
        tuple(dices.tolist()),
    )


def _surface_metrics(summary: SurfaceSummary, compat: Compat) -> dict[str, float]:
    """HD95, ASD and the surface Dice of a summary, under either definition (see `Compat`)."""
    s = summary
    if compat is Compat.USE:
        hd95, asd = s.hd95_pooled, s.sum_test_to_ref / s.test_surface
    else:
        hd95 = max(s.hd95_ref_to_test, s.hd95_test_to_ref)
        asd = (s.sum_ref_to_test + s.sum_test_to_ref) / (s.ref_surface + s.test_surface)
    return {"HD95": hd95, "ASD": asd, **dict(zip(_SDT_ASCENDING, s.surface_dices, strict=True))}


def score_prepared(
    reference: PreparedMask,
    test: PreparedMask,
    small_ml: float = 0.0,
    compat: Compat | str = Compat.OFF,
    memo: dict | None = None,
) -> PairMetrics:
    """Score two prepared masks (see `prepare_mask`); prepare each mask once, pair it often.

    `memo` (see `score_pairs`) keeps the overlap, surface summary and lesion matching of
    scored pairs, which the swapped pair reuses.
    """
    compat = Compat(compat)
    if reference.spacing_zyx_mm != test.spacing_zyx_mm or reference.shape_zyx != test.shape_zyx:
        raise ValueError("reference and test must be prepared on the same grid")
    voxel_ml = voxel_volume_ml(reference.spacing_zyx_mm)
    n_ref, n_test = reference.voxels, test.voxels
    volumes = {
        "VS": volumetric_similarity(n_ref, n_test),
        "AVD": abs(n_ref - n_test) * voxel_ml,
        "V_ref": n_ref * voxel_ml,
        "V_test": n_test * voxel_ml,
        **_lesions(reference, test, memo).metrics(),
    }
    reason = nan_reason(n_ref, n_test, voxel_ml, small_ml)
    if reason:
        undefined = dict.fromkeys(("Dice", "Precision", "Recall", "ASD", "HD95"), NAN)
        undefined.update(dict.fromkeys(SDT_TOLERANCES_MM, NAN))
        return PairMetrics(**volumes, **undefined, nan_reason=reason)
    if memo is not None and (id(test), id(reference)) in memo:
        tp, summary = memo[(id(test), id(reference))]
        summary = summary.swapped()
    else:
        tp, summary = overlap_voxels(reference, test), _summarise(reference, test)
        if memo is not None:
            memo[(id(reference), id(test))] = (tp, summary)
    return PairMetrics(
        **volumes,
        Dice=2 * tp / (n_ref + n_test),
        Precision=tp / n_test,
        Recall=tp / n_ref,
        **_surface_metrics(summary, compat),
    )


def _lesions(reference: PreparedMask, test: PreparedMask, memo: dict | None) -> LesionMatch:
    """The lesion matching of a pair, from the memo when its swap was matched already (each
    mask's lesions were labelled when it was prepared)."""
    if memo is not None and ("lesions", id(test), id(reference)) in memo:
        return memo["lesions", id(test), id(reference)].swapped()
    match = match_lesions(reference, test, voxel_volume_ml(reference.spacing_zyx_mm))
    if memo is not None:
        memo["lesions", id(reference), id(test)] = match
    return match


def score_pairs(
    prepared: Mapping[str, PreparedMask],
    pairs: Sequence[tuple[str, str]],
    small_ml: float = 0.0,
    compat: Compat | str = Compat.OFF,
) -> list[PairMetrics]:
    """`score_prepared` of every (reference, test) pair of prepared masks by name.

    A pair and its swap (A against B, B against A: every rater pair of a study) share one
    overlap count, one surface-distance search and one lesion matching.
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


def _checked(mask, name: str) -> np.ndarray:
    """An array-like mask (a numpy array, nested lists) as a checked bool array."""
    try:
        array = np.asarray(mask)
    except (TypeError, ValueError) as error:  # ragged nested lists
        raise InputError(f"{name} is not an array of 0/1 values ({error})") from None
    check_binary(array, name)
    return as_bool(array)


def score_pair(
    reference: np.ndarray,
    test: np.ndarray,
    spacing_zyx_mm: tuple[float, float, float],
    small_ml: float = 0.0,
    compat: Compat | str = Compat.OFF,
) -> PairMetrics:
    """Score a reference and a test mask, (z, y, x) arrays (or array-likes) on one grid with
    spacing in mm.

    The spacing must be in array-axis order (z, y, x): take it from `Geometry.spacing_zyx_mm`,
    never type it, since an (x, y, z) spacing silently scales every distance.
    """
    spacing = check_spacing(spacing_zyx_mm)
    reference, test = _checked(reference, "reference"), _checked(test, "test")
    if reference.shape != test.shape:
        raise InputError(f"test shape {test.shape} differs from reference shape {reference.shape}")
    return score_prepared(*prepare_masks([reference, test], spacing), small_ml, compat)
