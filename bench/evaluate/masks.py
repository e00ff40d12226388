"""What the metrics need from one mask, computed once per mask on its own small boxes.

Every per-pair cost is proportional to the lesion, never to the scan: the only full-volume work
is one read of each mask, which finds its occupied planes (compiled: the two masks of a pair are
read side by side, eight voxels at a time). A mask whose voxels form far-apart groups (a lesion
and a false positive 100 mm away) is cut at the empty gaps into several boxes, so a far false
positive stretches nothing, which is what makes union-box peers slow.

Two kinds of surface points, both as integer grid indices in (z, y, x) order:
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
from functools import cached_property

import numpy as np

from bench.evaluate import _kernels
from bench.evaluate._deepmind_tables import surfel_area_table

# Cut a box at an empty gap only when the gap is this many planes wide (narrow gaps save little
# and would shatter speckled masks into many tiny boxes), and into at most this many boxes.
MIN_GAP = 4
MAX_PARTS = 32


@dataclass(frozen=True)
class Part:
    """An inclusive index box [lo, hi] (z, y, x) and the mask inside it."""

    lo: tuple[int, int, int]
    crop: np.ndarray  # bool, the mask inside the box

    @cached_property
    def hi(self) -> tuple[int, int, int]:
        return tuple(a + n - 1 for a, n in zip(self.lo, self.crop.shape, strict=True))  # type: ignore[return-value]


@dataclass(frozen=True)
class PreparedMask:
    """One mask reduced to its voxel count, boxes and surface points (global grid indices)."""

    shape_zyx: tuple[int, int, int]
    spacing_zyx_mm: tuple[float, float, float]
    voxels: int
    parts: tuple[Part, ...]
    voxel_surface: np.ndarray  # (3, N) int32 voxel indices, rows z, y, x
    surfels: np.ndarray  # (3, M) int32 corner indices
    surfel_areas: np.ndarray  # (M,) float64, mm^2
    _indexes: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def volume_ml(self) -> float:
        return self.voxels * voxel_volume_ml(self.spacing_zyx_mm)

    def search_cache(self, points: str) -> dict:
        """Where the distance search keeps its index of `points` ("voxel_surface" or
        "surfels") between calls: a mask paired with several others is indexed once."""
        return self._indexes.setdefault(points, {})


def voxel_volume_ml(spacing_zyx_mm: tuple[float, float, float]) -> float:
    return math.prod(spacing_zyx_mm) / 1000.0


def _runs(flags: np.ndarray, min_gap: int) -> list[tuple[int, int]]:
    """Inclusive (start, end) runs of True, merging runs separated by fewer than min_gap."""
    hits = np.flatnonzero(flags)
    if hits.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(hits) > min_gap)
    if cuts.size == 0:  # the usual answer, without the bookkeeping below
        return [(int(hits[0]), int(hits[-1]))]
    starts = np.concatenate(([hits[0]], hits[cuts + 1]))
    ends = np.concatenate((hits[cuts], [hits[-1]]))
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _slices(lo: tuple[int, ...] | list[int], hi: tuple[int, ...] | list[int]) -> tuple[slice, ...]:
    """Index slices of the inclusive box [lo, hi]."""
    return tuple(slice(a, b + 1) for a, b in zip(lo, hi, strict=True))


def _box_runs(region: np.ndarray, min_gap: int) -> list[list[tuple[int, int]]]:
    """The `_runs` of occupied planes of the region along z, y and x (`_kernels.box_runs`):
    the occupied slices, then the region collapsed to one plane, whose rows and columns give
    the in-plane extent."""
    plane = region.any(axis=0)
    profiles = region.any(axis=(1, 2)), plane.any(axis=1), plane.any(axis=0)
    return [_runs(p, min_gap) for p in profiles]


def _boxes(mask: np.ndarray, lo: list[int], hi: list[int], budget: list[int]) -> list[tuple]:
    """Tight boxes of the non-zero voxels of mask[lo:hi], cut at wide empty gaps: along z
    first, then (within one run of slices) along y, then x (`_kernels.split_boxes`)."""
    gap = MIN_GAP if budget[0] > 0 else 1 << 30
    region = mask[_slices(lo, hi)]
    z_runs, y_runs, x_runs = _box_runs(region, gap)
    if len(z_runs) == 1:
        ((start, end),) = z_runs
        if end - start + 1 < region.shape[0]:  # the in-plane runs of those slices only
            _, y_runs, x_runs = _box_runs(region[start : end + 1], gap)
        lo[0], hi[0] = lo[0] + start, lo[0] + end
        if len(y_runs) == 1 and len(x_runs) == 1:
            lo[1], hi[1] = lo[1] + y_runs[0][0], lo[1] + y_runs[0][1]
            lo[2], hi[2] = lo[2] + x_runs[0][0], lo[2] + x_runs[0][1]
            return [(tuple(lo), tuple(hi))]
        axis, runs = (1, y_runs) if len(y_runs) > 1 else (2, x_runs)
    else:
        axis, runs = 0, z_runs
    budget[0] -= max(0, len(runs) - 1)
    boxes = []
    for start, end in runs:
        sub_lo, sub_hi = list(lo), list(hi)
        sub_lo[axis], sub_hi[axis] = lo[axis] + start, lo[axis] + end
        boxes += _boxes(mask, sub_lo, sub_hi, budget)
    return boxes


def _scanned(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(words, bytes) views of a one-byte mask for `_kernels.occupied_profiles` (None: numpy).

    The words are uint64 (eight voxels) where rows allow, else the bytes themselves.
    """
    if not (_kernels.HAVE_NUMBA and mask.dtype.itemsize == 1 and mask.size):
        return None
    voxels = mask.view(np.uint8)
    whole_words = voxels.flags.c_contiguous and voxels.shape[2] % 8 == 0
    return (voxels.view(np.uint64) if whole_words else voxels), voxels


Profiles = tuple[np.ndarray, np.ndarray, np.ndarray]


def occupied_profiles(masks: list[np.ndarray]) -> list[Profiles | None]:
    """Which planes along z, y and x hold a voxel, per mask (None: left to numpy's `_boxes`).

    Compiled: masks of one shape are scanned two at a time, in one pass over both: the one
    pass over the volume, which also gives `_kernels.split_boxes` its first cut.
    """
    out: list[Profiles | None] = [None] * len(masks)
    views = [_scanned(mask) for mask in masks]
    todo = [i for i, v in enumerate(views) if v is not None]
    while todo:
        i = todo.pop(0)
        mate = next((j for j in todo if masks[j].shape == masks[i].shape), None)
        if mate is None:
            mate = i  # alone: scanned side by side with itself, from cache the second time
        else:
            todo.remove(mate)
        (words_a, bytes_a), (words_b, bytes_b) = views[i], views[mate]
        if words_a.dtype != words_b.dtype:  # one kind of view for both
            words_a, words_b = bytes_a, bytes_b
        found = _kernels.occupied_profiles(words_a, bytes_a, words_b, bytes_b)
        out[i], out[mate] = found[:3], found[3:]
    return out


def _padded(crop: np.ndarray) -> np.ndarray:
    """The crop as uint8 with one zero voxel of padding on every side."""
    padded = np.zeros(tuple(n + 2 for n in crop.shape), np.uint8)
    padded[1:-1, 1:-1, 1:-1] = crop
    return padded


def _voxel_surface(padded: np.ndarray) -> np.ndarray:
    """Boolean map (crop-sized) of voxels with a face neighbour outside the mask."""
    core = padded[1:-1, 1:-1, 1:-1]
    interior = core.copy()
    interior &= padded[:-2, 1:-1, 1:-1]
    interior &= padded[2:, 1:-1, 1:-1]
    interior &= padded[1:-1, :-2, 1:-1]
    interior &= padded[1:-1, 2:, 1:-1]
    interior &= padded[1:-1, 1:-1, :-2]
    interior &= padded[1:-1, 1:-1, 2:]
    return (core ^ interior).view(bool)


def neighbour_codes(padded: np.ndarray) -> np.ndarray:
    """DeepMind's 8-bit neighbour code of every corner, combined one axis at a time.

    Bit 7 - (4*kz + 2*ky + kx) is the voxel at offset (kz, ky, kx) in {0, 1}^3 from the
    corner's lower neighbour: the same as correlating with DeepMind's kernel
    [[[128, 64], [32, 16]], [[8, 4], [2, 1]]] (checked in the tests).
    """
    x_pairs = (padded[:, :, :-1] << 1) | padded[:, :, 1:]
    xy = (x_pairs[:, :-1, :] << 2) | x_pairs[:, 1:, :]
    return (xy[:-1] << 4) | xy[1:]


def _indices(flags: np.ndarray) -> np.ndarray:
    """(3, N) int32 indices of the True cells, in (z, y, x) raster order."""
    return np.array(np.nonzero(flags), dtype=np.int32).reshape(3, -1)


def prepare_mask(mask: np.ndarray, spacing_zyx_mm: tuple[float, float, float]) -> PreparedMask:
    """Everything the pair metrics need from one (z, y, x) binary mask, in one pass."""
    return prepare_masks([mask], spacing_zyx_mm)[0]


def prepare_masks(
    masks: list[np.ndarray], spacing_zyx_mm: tuple[float, float, float]
) -> list[PreparedMask]:
    """`prepare_mask` of each mask on one grid; their one pass over the volume is shared."""
    for mask in masks:
        if mask.ndim != 3:
            raise ValueError(f"expected a 3D (z, y, x) mask, got shape {mask.shape}")
    spacing = tuple(float(s) for s in spacing_zyx_mm)
    if len(spacing) != 3 or not all(math.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"spacing_zyx_mm must be 3 positive numbers, got {spacing_zyx_mm}")
    areas_of_code = surfel_area_table(spacing)  # type: ignore[arg-type]
    return [
        _prepare(mask, spacing, profiles, areas_of_code)  # type: ignore[arg-type]
        for mask, profiles in zip(masks, occupied_profiles(masks), strict=True)
    ]


def _prepare(
    mask: np.ndarray,
    spacing: tuple[float, float, float],
    profiles: Profiles | None,
    areas_of_code: np.ndarray,
) -> PreparedMask:
    """One mask, given its profiles (None: numpy): its boxes, surface points, voxel count."""
    if profiles is not None:
        voxels_u8 = mask.view(np.uint8)
        limits = _kernels.split_boxes(voxels_u8, *profiles, MIN_GAP, MAX_PARTS)
        boxes = [(tuple(b[:3]), tuple(b[3:])) for b in limits.tolist()]
        parts = _parts(mask, boxes)
        voxel_surface, surfels, areas, voxels = _kernels.mask_surfaces(
            voxels_u8, limits, areas_of_code
        )
    else:
        whole = [0, 0, 0], [n - 1 for n in mask.shape]
        boxes = _boxes(mask, *whole, [MAX_PARTS - 1]) if mask.size else []
        parts = _parts(mask, boxes)
        voxel_surface, surfels, areas, voxels = _surfaces(parts, areas_of_code)
    return PreparedMask(
        shape_zyx=tuple(mask.shape),  # type: ignore[arg-type]
        spacing_zyx_mm=spacing,
        voxels=int(voxels),
        parts=parts,
        voxel_surface=voxel_surface,
        surfels=surfels,
        surfel_areas=areas,
    )


def _parts(mask: np.ndarray, boxes: list[tuple]) -> tuple[Part, ...]:
    """Each box with the mask inside it (a view where the mask is bool)."""
    return tuple(Part(lo, mask[_slices(lo, hi)].astype(bool, copy=False)) for lo, hi in boxes)


def _surfaces(
    parts: tuple[Part, ...], areas_of_code: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """numpy's `_kernels.mask_surfaces`: voxel surface, surfels, areas, voxel count."""
    voxel_surface, surfels, areas, voxels = [], [], [], 0
    for part in parts:
        padded = _padded(part.crop)
        origin = np.asarray(part.lo, np.int32)[:, None]
        voxels += int(np.count_nonzero(part.crop))
        codes = neighbour_codes(padded)
        on_surface = (codes != 0) & (codes != 255)
        voxel_surface.append(_indices(_voxel_surface(padded)) + origin)
        # Padded corner j lies between padded voxels j and j + 1, i.e. between mask voxels
        # lo + j - 1 and lo + j: its corner index is lo + j.
        surfels.append(_indices(on_surface) + origin)
        areas.append(areas_of_code[codes[on_surface]])
    if not parts:
        return np.zeros((3, 0), np.int32), np.zeros((3, 0), np.int32), np.zeros(0), 0
    return (
        np.concatenate(voxel_surface, axis=1),
        np.concatenate(surfels, axis=1),
        np.concatenate(areas),
        voxels,
    )


def overlap_voxels(a: PreparedMask, b: PreparedMask) -> int:
    """Voxels in both masks (TP), counted only where their boxes meet."""
    total = 0
    for pa in a.parts:
        for pb in b.parts:
            lo = tuple(map(max, pa.lo, pb.lo))
            hi = tuple(map(min, pa.hi, pb.hi))
            if any(low > high for low, high in zip(lo, hi, strict=True)):
                continue
            total += int(
                np.count_nonzero(pa.crop[_within(lo, hi, pa)] & pb.crop[_within(lo, hi, pb)])
            )
    return total


def _within(lo: tuple[int, ...], hi: tuple[int, ...], part: Part) -> tuple[slice, ...]:
    """Slices of the box [lo, hi] (inside the part's box) in the part's crop."""
    return tuple(slice(a - o, b - o + 1) for a, b, o in zip(lo, hi, part.lo, strict=True))
