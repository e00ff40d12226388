"""Whether a mask lies on its image's voxel grid, with a tolerance relative to the voxel size.

A fixed tolerance in mm is wrong at both ends: headers written by another tool can put a mask
a few micrometres off (nnU-Net accepts any origin or direction difference with a warning),
while a shift of a tenth of a voxel is real. The test used here: every voxel centre of the
mask lies within `GRID_TOLERANCE_VOXELS` of the image's voxel centre with the same index,
measured along each image axis in units of that axis' voxel size. Both grids are affine maps of
the voxel index, so the largest difference is at one of the eight corner voxels; checking
those checks every voxel, and spacing, origin and direction differences are all covered.
"""

from __future__ import annotations

import math
from itertools import product

import numpy as np

from bench.io import Geometry

GRID_TOLERANCE_VOXELS = 0.01
# Below this a difference is header float noise and not worth printing.
_PRINTED_DIFFERENCE = 1e-7


def index_to_world(geometry: Geometry) -> np.ndarray:
    """The 3 x 4 affine from a voxel index (x, y, z, 1) to LPS mm."""
    direction = np.asarray(geometry.direction, float).reshape(3, 3)
    matrix = direction @ np.diag(np.asarray(geometry.spacing_xyz, float))
    return np.column_stack([matrix, np.asarray(geometry.origin_xyz, float)])


def offset_voxels(reference: np.ndarray, other: np.ndarray, shape_xyz: tuple[int, ...]) -> float:
    """The largest distance, in `reference` voxels along its axes, between the positions the
    two 3 x 4 index-to-world affines give one voxel index (checked at the corners)."""
    to_index = np.linalg.inv(reference[:, :3])
    largest = 0.0
    for corner in product(*[(0, n - 1) for n in shape_xyz]):
        index = np.array([*corner, 1.0])
        moved = to_index @ ((other - reference) @ index)
        largest = max(largest, float(np.abs(moved).max()))
    return largest


def grid_offset(image: Geometry, other: Geometry) -> float | None:
    """How far `other`'s voxel centres are from `image`'s in voxels; None if shapes differ."""
    if tuple(image.shape_zyx) != tuple(other.shape_zyx):
        return None
    shape_xyz = tuple(reversed(image.shape_zyx))
    return offset_voxels(index_to_world(image), index_to_world(other), shape_xyz)


def on_grid(image: Geometry, other: Geometry) -> bool:
    offset = grid_offset(image, other)
    return offset is not None and offset <= GRID_TOLERANCE_VOXELS


def describe_difference(image: Geometry, other: Geometry, name: str = "image") -> str:
    """Every header field of `other` that differs from `image`'s, with digits enough to see it,
    the difference itself, and the largest voxel offset it causes."""
    if tuple(image.shape_zyx) != tuple(other.shape_zyx):
        return (
            f"shape {tuple(other.shape_zyx)} differs from the {name}'s "
            f"{tuple(image.shape_zyx)} (z, y, x)"
        )
    parts = []
    for label, mine, theirs in (
        ("spacing", image.spacing_xyz, other.spacing_xyz),
        ("origin", image.origin_xyz, other.origin_xyz),
        ("direction", image.direction, other.direction),
    ):
        shown = show_difference(mine, theirs)
        if shown is not None:
            parts.append(f"{label} {shown[1]} differs from the {name}'s {shown[0]} by {shown[2]}")
    offset = grid_offset(image, other) or 0.0
    return (
        "; ".join(parts or ["header differs"])
        + f" (voxel centres up to {offset:.3g} voxel apart; tolerance {GRID_TOLERANCE_VOXELS})"
    )


def show_difference(
    mine: tuple[float, ...] | np.ndarray, theirs: tuple[float, ...] | np.ndarray
) -> tuple[str, str, str] | None:
    """(mine, theirs, theirs - mine) printed with digits enough to tell them apart; None
    where they agree to float noise."""
    difference = np.subtract(theirs, mine)
    changed = np.abs(difference)[np.abs(difference) > _PRINTED_DIFFERENCE]
    if changed.size == 0:
        return None
    decimals = min(9, max(1, math.ceil(-math.log10(float(changed.min()))) + 1))
    return _fixed(mine, decimals), _fixed(theirs, decimals), _short(difference)


def _fixed(values: tuple[float, ...] | np.ndarray, decimals: int) -> str:
    return "(" + ", ".join(f"{v:.{decimals}f}" for v in np.asarray(values).tolist()) + ")"


def _short(values: np.ndarray) -> str:
    return "(" + ", ".join("0" if v == 0 else f"{v:.3g}" for v in values.tolist()) + ")"
