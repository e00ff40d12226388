"""What the metrics need from one mask, computed once per mask on its own small boxes: voxel
count, surface points and lesions.

Every per-pair cost is proportional to the lesion, never to the scan: the only full-volume work
is one read of each mask (two masks side by side), which finds its occupied planes. A mask whose
voxels form far-apart groups (a lesion and a false positive 100 mm away) is cut at the empty
gaps into several boxes, so a far false positive stretches nothing, which is what makes
union-box peers slow.

Two kinds of surface points, both as (3, N) int32 grid indices in (z, y, x) order:
- voxel surface (for HD95 and ASD): the mask minus its erosion with face connectivity, voxels on
  the volume border counting as surface (scipy's `binary_erosion` with `border_value=0`, as
  medpy and MONAI do). Index i is voxel centre i.
- surfels (for the surface Dice): corners of the voxel grid whose 2x2x2 neighbourhood is mixed,
  each with DeepMind's marching-cubes area. Corner index c lies between voxels c-1 and c, the
  half-voxel-shifted grid of `surface_distance.compute_surface_distances`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from bench.errors import InputError
from bench.evaluate import _kernels
from bench.evaluate._deepmind_tables import surfel_area_table

# Cut a box at an empty gap only when the gap is this many planes wide (narrow gaps save little
# and would shatter speckled masks into many tiny boxes), and into at most this many boxes.
MIN_GAP = 4
MAX_PARTS = 32
# Voxel sizes a scan can have; beyond them a unit is wrong (metres or micrometres as mm).
SPACING_RANGE_MM = (0.01, 50.0)


@dataclass(frozen=True, eq=False)
class PreparedMask:
    """One mask reduced to its voxel count, boxes and surface points (global grid indices)."""

    shape_zyx: tuple[int, int, int]
    spacing_zyx_mm: tuple[float, float, float]
    voxels: int
    boxes: np.ndarray  # (P, 6) int64: inclusive lo (z, y, x), then hi
    voxel_surface: np.ndarray  # (3, N) int32 voxel indices
    surfels: np.ndarray  # (3, M) int32 corner indices
    surfel_areas: np.ndarray  # (M,) float64, mm^2
    # 26-connected lesions as runs of voxels along x, found inside the boxes (see
    # `_components`): (R, 3) int32 first x, last x, lesion; where each row's runs start.
    lesion_runs: np.ndarray = field(repr=False)
    lesion_rows: np.ndarray = field(repr=False)  # int64
    lesion_voxels: np.ndarray  # (L,) int64, voxels of lesion 1..L
    bytes_zyx: np.ndarray = field(repr=False)  # the mask as uint8, for the overlap

    @property
    def volume_ml(self) -> float:
        return self.voxels * voxel_volume_ml(self.spacing_zyx_mm)


def voxel_volume_ml(spacing_zyx_mm: tuple[float, float, float]) -> float:
    return math.prod(spacing_zyx_mm) / 1000.0


def check_spacing(spacing_zyx_mm, case: str | None = None, file=None) -> tuple[float, float, float]:
    """The spacing as 3 floats; InputError unless each is a voxel size a scan can have."""
    try:
        spacing = tuple(float(s) for s in spacing_zyx_mm)
    except (TypeError, ValueError):
        spacing = ()
    if len(spacing) != 3 or not all(math.isfinite(s) and s > 0 for s in spacing):
        raise InputError(f"spacing_zyx_mm must be 3 positive numbers, got {spacing_zyx_mm!r}")
    low, high = SPACING_RANGE_MM
    if not all(low <= s <= high for s in spacing):
        shown = ", ".join(f"{s:g}" for s in spacing)
        raise InputError(
            f"spacing (z, y, x) = ({shown}) mm is outside {low:g}-{high:g} mm: a unit mix-up "
            "(metres or micrometres given as millimetres) or a broken header?",
            case,
            file,
        )
    return spacing  # type: ignore[return-value]


def _views(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(words, bytes) of a one-byte mask: words are uint64 (eight voxels) where rows allow."""
    voxels = mask.view(np.uint8)
    whole_words = voxels.flags.c_contiguous and voxels.shape[2] % 8 == 0
    return (voxels.view(np.uint64) if whole_words else voxels), voxels


def prepare_mask(mask: np.ndarray, spacing_zyx_mm: tuple[float, float, float]) -> PreparedMask:
    """Everything the pair metrics need from one (z, y, x) mask (non-zero: inside)."""
    return prepare_masks([mask], spacing_zyx_mm)[0]


def prepare_masks(
    masks: list[np.ndarray], spacing_zyx_mm: tuple[float, float, float]
) -> list[PreparedMask]:
    """`prepare_mask` of each mask on one grid; masks of one shape are read two at a time, in
    one pass over both (a mask alone is read beside itself, from cache the second time)."""
    spacing = check_spacing(spacing_zyx_mm)
    for mask in masks:
        if mask.ndim != 3:
            raise ValueError(f"expected a 3D (z, y, x) mask, got shape {mask.shape}")
    masks = [m if m.dtype.itemsize == 1 else m != 0 for m in masks]
    areas_of_code = surfel_area_table(spacing)
    out: list[PreparedMask | None] = [None] * len(masks)
    todo = list(range(len(masks)))
    while todo:
        i = todo.pop(0)
        mate = next((j for j in todo if masks[j].shape == masks[i].shape), i)
        if mate != i:
            todo.remove(mate)
        out[i], out[mate] = _prepare_two(masks[i], masks[mate], spacing, areas_of_code)
    return out  # type: ignore[return-value]


def _prepare_two(
    a: np.ndarray, b: np.ndarray, spacing: tuple[float, float, float], areas_of_code: np.ndarray
) -> tuple[PreparedMask, PreparedMask]:
    if a.size == 0:  # nothing to read (a zero-length axis)
        empty = _prepared(a, spacing, np.zeros((0, 6), np.int64), *_NOTHING_FOUND)
        return empty, empty
    (words_a, bytes_a), (words_b, bytes_b) = _views(a), _views(b)
    if words_a.dtype != words_b.dtype:  # one kind of view for both
        words_a, words_b = bytes_a, bytes_b
    found_a, found_b = _kernels.prepare_two(
        words_a, bytes_a, words_b, bytes_b, areas_of_code, MIN_GAP, MAX_PARTS
    )
    return _prepared(a, spacing, *found_a), _prepared(b, spacing, *found_b)


# What `_kernels.mask_surfaces` finds in an empty mask.
_NOTHING_FOUND = (
    np.zeros((3, 0), np.int32),
    np.zeros((3, 0), np.int32),
    np.zeros(0),
    0,
    np.zeros((0, 3), np.int32),
    np.zeros(1, np.int64),
    np.zeros(0, np.int64),
)


def _prepared(
    mask, spacing, boxes, voxel_surface, surfels, areas, voxels, runs, rows, lesion_voxels
) -> PreparedMask:
    return PreparedMask(
        shape_zyx=tuple(mask.shape),  # type: ignore[arg-type]
        spacing_zyx_mm=spacing,
        voxels=int(voxels),
        boxes=boxes,
        voxel_surface=voxel_surface,
        surfels=surfels,
        surfel_areas=areas,
        lesion_runs=runs,
        lesion_rows=rows,
        lesion_voxels=lesion_voxels,
        bytes_zyx=mask.view(np.uint8),
    )


def overlap_voxels(a: PreparedMask, b: PreparedMask) -> int:
    """Voxels in both masks (TP), counted only where their boxes meet."""
    return int(_kernels.overlap_in_boxes(a.bytes_zyx, a.boxes, b.bytes_zyx, b.boxes))
