"""One pass over a pair: every surface distance the metrics read, computed once.

Like DeepMind's `compute_surface_distances`, a two-stage design: this module finds the
distances, cheap reducers (`surface_dices`, `compat.hd95_mm`, `compat.asd_mm`) read them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.evaluate.distance import nearest_squared_mm, tolerance_classes
from bench.evaluate.masks import PreparedMask

# The surface Dice tolerances, keyed by the metric names of bench.metric_names.
SDT_TOLERANCES_MM: dict[str, float] = {"SDT0": 0.0, "SDT5": 5.0, "SDT10": 10.0}


@dataclass(frozen=True)
class SurfaceDistances:
    """Nearest-surface distances in mm, both directions, on both surface definitions."""

    ref_to_test_mm: np.ndarray  # per reference surface voxel (HD95, ASD)
    test_to_ref_mm: np.ndarray  # per test surface voxel
    tolerances_mm: tuple[float, ...]  # ascending
    ref_surfel_class: np.ndarray  # per reference surfel: index of the smallest tolerance met
    test_surfel_class: np.ndarray
    ref_surfel_areas: np.ndarray  # mm^2
    test_surfel_areas: np.ndarray

    def surface_dice(self, tolerance_mm: float) -> float:
        """Area-weighted surface Dice at one of `tolerances_mm`, as DeepMind's reducer does.

        (overlapping area of both surfaces) / (total area of both surfaces), where a surfel
        overlaps when its distance to the other surface is at most the tolerance.
        """
        return self.surface_dices()[self.tolerances_mm.index(tolerance_mm)]

    def surface_dices(self) -> list[float]:
        """`surface_dice` at every tolerance, ascending.

        Masked sums, like DeepMind's reducer (not a cumulative sum): when every surfel
        overlaps, the overlap is the same sum as the total and the result exactly 1.0.
        """
        total = self.ref_surfel_areas.sum() + self.test_surfel_areas.sum()
        return [
            float(
                (
                    self.ref_surfel_areas[self.ref_surfel_class <= k].sum()
                    + self.test_surfel_areas[self.test_surfel_class <= k].sum()
                )
                / total
            )
            for k in range(len(self.tolerances_mm))
        ]


def surface_distances(
    reference: PreparedMask,
    test: PreparedMask,
    tolerances_mm: tuple[float, ...] = tuple(SDT_TOLERANCES_MM.values()),
) -> SurfaceDistances:
    """Distances between the surfaces of two non-empty masks on one grid."""
    if reference.spacing_zyx_mm != test.spacing_zyx_mm or reference.shape_zyx != test.shape_zyx:
        raise ValueError("reference and test must be prepared on the same grid")
    if reference.voxels == 0 or test.voxels == 0:
        raise ValueError("surface distances need two non-empty masks")
    spacing = reference.spacing_zyx_mm
    tolerances = tuple(sorted(float(t) for t in tolerances_mm))

    def rooted(squared: np.ndarray) -> np.ndarray:
        return np.sqrt(squared, out=squared)

    return SurfaceDistances(
        ref_to_test_mm=rooted(
            nearest_squared_mm(reference.voxel_surface, test.voxel_surface, spacing)
        ),
        test_to_ref_mm=rooted(
            nearest_squared_mm(test.voxel_surface, reference.voxel_surface, spacing)
        ),
        tolerances_mm=tolerances,
        ref_surfel_class=tolerance_classes(reference.surfels, test.surfels, spacing, tolerances),
        test_surfel_class=tolerance_classes(test.surfels, reference.surfels, spacing, tolerances),
        ref_surfel_areas=reference.surfel_areas,
        test_surfel_areas=test.surfel_areas,
    )
