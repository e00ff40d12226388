"""What the metrics need from one mask, computed once per mask on its own small boxes.

Every per-pair cost is proportional to the lesion, never to the scan: the only full-volume work
is finding the bounding box. A mask whose voxels form far-apart groups (a lesion and a false
positive 100 mm away) is cut at the empty gaps into several boxes, so a far false positive
stretches nothing, which is what makes union-box peers slow.

Two kinds of surface points, both as integer grid indices in (z, y, x) order:
- voxel surface (for HD95 and ASD): the mask minus its erosion with face connectivity, voxels on
  the volume border counting as surface (scipy's `binary_erosion` with `border_value=0`, as
  medpy and MONAI do). Index i is voxel centre i.
- surfels (for the surface Dice): corners of the voxel grid whose 2x2x2 neighbourhood is mixed,
  each with DeepMind's marching-cubes area. Corner index c lies between voxels c-1 and c, the
  half-voxel-shifted grid of `surface_distance.compute_surface_distances`.
"""

from __future__ import annotations

from dataclasses import dataclass

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

    @property
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

    @property
    def volume_ml(self) -> float:
        return self.voxels * voxel_volume_ml(self.spacing_zyx_mm)


def voxel_volume_ml(spacing_zyx_mm: tuple[float, float, float]) -> float:
    return float(np.prod(spacing_zyx_mm)) / 1000.0


def _runs(flags: np.ndarray, min_gap: int) -> list[tuple[int, int]]:
    """Inclusive (start, end) runs of True, merging runs separated by fewer than min_gap."""
    hits = np.flatnonzero(flags)
    if hits.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(hits) > min_gap)
    starts = np.concatenate(([hits[0]], hits[cuts + 1]))
    ends = np.concatenate((hits[cuts], [hits[-1]]))
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _slices(lo: tuple[int, ...] | list[int], hi: tuple[int, ...] | list[int]) -> tuple[slice, ...]:
    """Index slices of the inclusive box [lo, hi]."""
    return tuple(slice(a, b + 1) for a, b in zip(lo, hi, strict=True))


def _boxes(mask: np.ndarray, lo: list[int], hi: list[int], budget: list[int]) -> list[tuple]:
    """Tight boxes of the non-zero voxels of mask[lo:hi], cut at wide empty gaps.

    Two reductions: occupied slices (the only pass over the whole volume), then the occupied
    slices collapsed to one plane, whose rows and columns give the in-plane extent.
    """
    gap = MIN_GAP if budget[0] > 0 else 1 << 30
    region = mask[_slices(lo, hi)]
    z_runs = _runs(region.reshape(region.shape[0], -1).any(axis=1), gap)
    if len(z_runs) == 1:
        ((start, end),) = z_runs
        plane = region[start : end + 1].any(axis=0)
        lo[0], hi[0] = lo[0] + start, lo[0] + end
        y_runs, x_runs = _runs(plane.any(axis=1), gap), _runs(plane.any(axis=0), gap)
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
    if mask.ndim != 3:
        raise ValueError(f"expected a 3D (z, y, x) mask, got shape {mask.shape}")
    spacing = tuple(float(s) for s in spacing_zyx_mm)
    if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"spacing_zyx_mm must be 3 positive numbers, got {spacing_zyx_mm}")
    boxes = _boxes(mask, [0, 0, 0], [n - 1 for n in mask.shape], [MAX_PARTS - 1])
    areas_of_code = surfel_area_table(spacing)  # type: ignore[arg-type]
    parts, voxel_surface, surfels, areas, voxels = [], [], [], [], 0
    for lo, hi in boxes:
        crop = mask[_slices(lo, hi)].astype(bool, copy=False)
        parts.append(Part(lo, crop))
        padded = _padded(crop)
        origin = np.asarray(lo, np.int32)[:, None]
        count = int(np.count_nonzero(crop))
        voxels += count
        if _kernels.HAVE_NUMBA:
            surface, corners, codes = _kernels.surface_points(padded, count)
        else:
            surface = _indices(_voxel_surface(padded))
            codes = neighbour_codes(padded)
            on_surface = (codes != 0) & (codes != 255)
            corners, codes = _indices(on_surface), codes[on_surface]
        voxel_surface.append(surface + origin)
        # Padded corner j lies between padded voxels j and j + 1, i.e. between mask voxels
        # lo + j - 1 and lo + j: its corner index is lo + j.
        surfels.append(corners + origin)
        areas.append(areas_of_code[codes])
    empty_points = np.zeros((3, 0), np.int32)
    return PreparedMask(
        shape_zyx=tuple(mask.shape),  # type: ignore[arg-type]
        spacing_zyx_mm=spacing,  # type: ignore[arg-type]
        voxels=voxels,
        parts=tuple(parts),
        voxel_surface=np.concatenate(voxel_surface, axis=1) if parts else empty_points,
        surfels=np.concatenate(surfels, axis=1) if parts else empty_points,
        surfel_areas=np.concatenate(areas) if parts else np.zeros(0),
    )


def overlap_voxels(a: PreparedMask, b: PreparedMask) -> int:
    """Voxels in both masks (TP), counted only where their boxes meet."""
    total = 0
    for pa in a.parts:
        for pb in b.parts:
            lo = np.maximum(pa.lo, pb.lo)
            hi = np.minimum(pa.hi, pb.hi)
            if np.any(lo > hi):
                continue
            in_a = _slices(lo - pa.lo, hi - pa.lo)
            in_b = _slices(lo - pb.lo, hi - pb.lo)
            total += int(np.count_nonzero(pa.crop[in_a] & pb.crop[in_b]))
    return total
