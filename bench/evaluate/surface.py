"""One pass over a pair: every surface distance the metrics read, computed once.

Like DeepMind's `compute_surface_distances`, a two-stage design: this module finds the
distances, cheap reducers (`surface_dices`, `compat.hd95_mm`, `compat.asd_mm`) read them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.evaluate.distance import nearest_squared_mm, pair_distances, tolerance_classes
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

    def swapped(self) -> SurfaceDistances:
        """The same distances seen from the other mask: a pair and its swap (rater A against
        B, B against A) share one search."""
        return SurfaceDistances(
            ref_to_test_mm=self.test_to_ref_mm,
            test_to_ref_mm=self.ref_to_test_mm,
            tolerances_mm=self.tolerances_mm,
            ref_surfel_class=self.test_surfel_class,
            test_surfel_class=self.ref_surfel_class,
            ref_surfel_areas=self.test_surfel_areas,
            test_surfel_areas=self.ref_surfel_areas,
        )

    def surface_dice(self, tolerance_mm: float) -> float:
        """Area-weighted surface Dice at one of `tolerances_mm`, as DeepMind's reducer does.

        (overlapping area of both surfaces) / (total area of both surfaces), where a surfel
        overlaps when its distance to the other surface is at most the tolerance.
        """
        return self.surface_dices()[self.tolerances_mm.index(tolerance_mm)]

    def surface_dices(self) -> list[float]:
        """`surface_dice` at every tolerance, ascending.

        Area per tolerance class summed once per surface, then accumulated: when every
        surfel overlaps, the classes beyond add exact zeros, so the overlap is the same sum
        as the total and the result exactly 1.0.
        """
        classes = len(self.tolerances_mm) + 1
        within = np.cumsum(
            np.bincount(self.ref_surfel_class, self.ref_surfel_areas, classes)
        ) + np.cumsum(np.bincount(self.test_surfel_class, self.test_surfel_areas, classes))
        return (within[:-1] / within[-1]).tolist()


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

    found = pair_distances(
        (reference.voxel_surface, test.voxel_surface, reference.surfels, test.surfels),
        spacing,
        tolerances,
        tuple(m.search_cache(k) for k in ("voxel_surface", "surfels") for m in (reference, test)),
    )
    if found is not None:
        ref_to_test, test_to_ref, ref_classes, test_classes = found
        return SurfaceDistances(
            ref_to_test,
            test_to_ref,
            tolerances,
            ref_classes,
            test_classes,
            reference.surfel_areas,
            test.surfel_areas,
        )
    return SurfaceDistances(
        ref_to_test_mm=rooted(
            nearest_squared_mm(
                reference.voxel_surface,
                test.voxel_surface,
                spacing,
                cache=test.search_cache("voxel_surface"),
            )
        ),
        test_to_ref_mm=rooted(
            nearest_squared_mm(
                test.voxel_surface,
                reference.voxel_surface,
                spacing,
                cache=reference.search_cache("voxel_surface"),
            )
        ),
        tolerances_mm=tolerances,
        ref_surfel_class=tolerance_classes(
            reference.surfels,
            test.surfels,
            spacing,
            tolerances,
            cache=test.search_cache("surfels"),
        ),
        test_surfel_class=tolerance_classes(
            test.surfels,
            reference.surfels,
            spacing,
            tolerances,
            cache=reference.search_cache("surfels"),
        ),
        ref_surfel_areas=reference.surfel_areas,
        test_surfel_areas=test.surfel_areas,
    )
