"""Exact nearest distances for the few points the outward row search leaves open.

These are far points (a false positive 100 mm away) or points in large holes. A point beyond
the features' box on some side only needs, per line of features towards it, the line's
extreme feature; the rest is brute force (compiled when numba is there) or a KD-tree.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from bench.evaluate import _kernels

# Brute force (query x feature) in numpy up to this many pairs (100x that when compiled);
# a KD-tree beyond.
BRUTE_FORCE_PAIRS = 20_000


def bounds(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis (min, max) of (3, N) points, one row at a time (numpy reduces a (3, N) array
    along axis 1 with an inner loop of length 3, about 50 times slower)."""
    return np.array([row.min() for row in points]), np.array([row.max() for row in points])


def _squared(delta: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """((d0*s0)^2 + (d1*s1)^2) + (d2*s2)^2 for (3, ...) integer offsets, in axis order."""
    total = None
    for k in range(3):
        term = delta[k] * spacing[k]
        term *= term
        total = term if total is None else total + term
    return total


def _line_extremes(features: np.ndarray, axis: int, high: bool) -> np.ndarray:
    """For each line of features parallel to `axis`, its feature furthest towards `high`."""
    a, b = (k for k in range(3) if k != axis)
    key = features[a].astype(np.int64) * (int(features[b].max()) + 1) + features[b]
    order = np.lexsort((features[axis], key))
    sorted_key = key[order]
    edges = np.flatnonzero(np.diff(sorted_key)) + 1
    picks = np.append(edges - 1, sorted_key.size - 1) if high else np.insert(edges, 0, 0)
    return features[:, order[picks]]


def _nearest_exact(
    queries: np.ndarray, features: np.ndarray, spacing: np.ndarray, upper_mm: float | None
) -> np.ndarray:
    """Exact squared mm to the nearest feature: brute force when small, else a KD-tree."""
    n, m = queries.shape[1], features.shape[1]
    if _kernels.HAVE_NUMBA and n * m <= 100 * BRUTE_FORCE_PAIRS:
        return _kernels.nearest_brute(queries.astype(np.int64), features.astype(np.int64), spacing)
    if n * m <= BRUTE_FORCE_PAIRS:
        return _squared(queries[:, :, None] - features[:, None, :], spacing).min(axis=1)
    tree = cKDTree(features.T * spacing, balanced_tree=False, compact_nodes=False)
    bound = np.inf if upper_mm is None else upper_mm * (1 + 1e-6)
    _, index = tree.query(queries.T * spacing, distance_upper_bound=bound)
    out = np.full(n, np.inf)
    found = index < m
    out[found] = _squared(queries[:, found] - features[:, index[found]], spacing)
    return out


def exact_squared_mm(
    queries: np.ndarray, features: np.ndarray, spacing: np.ndarray, upper_mm: float | None
) -> np.ndarray:
    """Exact squared mm from each (3, N) query to the nearest (3, M) feature, both on one grid.

    With `upper_mm`, a KD-tree may stop at that distance (inf beyond it).
    """
    if _kernels.HAVE_NUMBA:
        out, done = _kernels.exact_beyond(queries, features, spacing)
        if not done.all():
            todo = ~done
            out[todo] = _nearest_exact(queries[:, todo], features, spacing, upper_mm)
        return out
    out = np.empty(queries.shape[1])
    todo = np.ones(queries.shape[1], bool)
    lo, hi = bounds(features)
    extent = hi - lo + 1
    # Axes whose lines are fewest first: their extreme-feature sets are smallest.
    for axis in sorted(range(3), key=lambda k: int(np.prod(np.delete(extent, k)))):
        for high in (False, True):
            side = todo & ((queries[axis] > hi[axis]) if high else (queries[axis] < lo[axis]))
            if side.any():
                # Beyond the box on this side, each line's nearest feature is its extreme one.
                extremes = _line_extremes(features, axis, high)
                out[side] = _nearest_exact(queries[:, side], extremes, spacing, upper_mm)
                todo &= ~side
    if todo.any():
        out[todo] = _nearest_exact(queries[:, todo], features, spacing, upper_mm)
    return out
