"""DeepMind's `surface-distance` 0.1 as an oracle, also under NumPy 2.

The pinned release uses `np.Inf` and `np.NaN` (gone in NumPy 2) where a mask is empty; while
it runs, numpy gets those two aliases back, so empty masks are checked against it too.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest

surface_distance = pytest.importorskip("surface_distance")


@contextlib.contextmanager
def numpy1_aliases():
    """`np.Inf` and `np.NaN` while the block runs, where numpy lacks them."""
    added = [name for name in ("Inf", "NaN") if name not in vars(np)]
    for name in added:
        setattr(np, name, getattr(np, name.lower()))
    try:
        with warnings.catch_warnings():
            # It imports scipy.ndimage.filters and .morphology (deprecated namespaces), and
            # divides 0 by 0 for two empty masks.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            yield
    finally:
        for name in added:
            delattr(np, name)


def surface_metrics(reference, test, spacing, tolerances=(0.0, 5.0, 10.0)) -> dict[str, float]:
    """DeepMind's surface Dice at each tolerance (`SDT<t>`), 95% robust Hausdorff, Dice and the
    reference's surfel areas, computed as its README does. Tolerances are keyed to 17 digits,
    so that nearby ones (1.817 and 1.8169971) stay apart."""
    reference, test = np.asarray(reference, bool), np.asarray(test, bool)
    with numpy1_aliases():
        distances = surface_distance.compute_surface_distances(reference, test, spacing)
        out = {
            f"SDT{t:.17g}": surface_distance.compute_surface_dice_at_tolerance(distances, t)
            for t in tolerances
        }
        out["HD95"] = surface_distance.compute_robust_hausdorff(distances, 95)
        out["Dice"] = surface_distance.compute_dice_coefficient(reference, test)
    out["areas_reference"] = distances["surfel_areas_gt"]
    return out
