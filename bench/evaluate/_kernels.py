"""Compiled inner loops (numba) for the two hot spots, with the numpy versions as fallback.

Why compiled: in numpy, the outward row search must run in batches that overshoot each query's
stopping point, and every step is a separate pass over memory; a per-query loop stops exactly
where the query is certified. The numpy paths in `distance.py` and `masks.py` compute the same
numbers (the tests check both) and are used when numba is not installed.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

try:  # numba is an accelerator: everything works, slower, without it
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised where numba is absent
    HAVE_NUMBA = False

    def njit(*args, **kwargs):  # type: ignore[no-redef]
        return lambda function: function


@njit(cache=True, nogil=True)
def row_search(q, f, reach, da, db, base, terms, run, certified_sq, thresholds, run_spacing):
    """The whole outward row search of `distance._search`, fused (same table, same loop).

    `q` and `f` are (3, N) points in (a, b, run) axis order. Returns (best squared mm, open):
    queries beyond `reach` of the features' box, and queries not closed within the offsets,
    are open.
    """
    n = q.shape[1]
    best = np.full(n, np.inf)
    open_ = np.ones(n, np.bool_)
    if n == 0 or f.shape[1] == 0:
        return best, open_
    q_lo = np.empty(3, np.int64)
    q_hi = np.empty(3, np.int64)
    for k in range(3):
        q_lo[k] = q[k].min() - reach[k]
        q_hi[k] = q[k].max() + reach[k]
    # Features beyond reach of every query cannot be nearest to a query the loop closes.
    keep = np.empty(f.shape[1], np.bool_)
    lo = np.full(3, np.iinfo(np.int64).max)
    hi = np.full(3, np.iinfo(np.int64).min)
    kept = 0
    for j in range(f.shape[1]):
        inside = True
        for k in range(3):
            if f[k, j] < q_lo[k] or f[k, j] > q_hi[k]:
                inside = False
        keep[j] = inside
        if inside:
            kept += 1
            for k in range(3):
                lo[k] = min(lo[k], f[k, j])
                hi[k] = max(hi[k], f[k, j])
    if kept == 0:
        return best, open_
    cap = reach[2] + 1
    ta = hi[0] - lo[0] + 1 + 4 * reach[0]
    tb = hi[1] - lo[1] + 1 + 4 * reach[1]
    width = hi[2] - lo[2] + 1 + 2 * reach[2]
    table = np.full(ta * tb * width, cap, np.uint16)
    for j in range(f.shape[1]):
        if keep[j]:
            row = ((f[0, j] - lo[0] + 2 * reach[0]) * tb + (f[1, j] - lo[1] + 2 * reach[1])) * width
            col = f[2, j] - lo[2] + reach[2]
            for c in range(max(0, col - cap + 1), min(width, col + cap)):
                d = abs(c - col)
                if d < table[row + c]:
                    table[row + c] = d
    squares = np.empty(cap + 1)
    for s in range(cap):
        squares[s] = (s * run_spacing) ** 2
    squares[cap] = np.inf
    jumps = (da * tb + db) * width
    n_offsets = base.shape[0]
    n_thresholds = thresholds.shape[0]
    for i in range(n):
        near = True
        for k in range(3):
            if q[k, i] < lo[k] - reach[k] or q[k, i] > hi[k] + reach[k]:
                near = False
        if not near:
            continue
        origin = ((q[0, i] - lo[0] + 2 * reach[0]) * tb + (q[1, i] - lo[1] + 2 * reach[1])) * width
        origin += q[2, i] - lo[2] + reach[2]
        current = np.inf
        for k in range(n_offsets):
            gathered = squares[table[origin + jumps[k]]]
            if run == 2:
                candidate = gathered + base[k]
            elif run == 1:
                candidate = (terms[k, 0] + gathered) + terms[k, 2]
            else:
                candidate = (gathered + terms[k, 1]) + terms[k, 2]
            if candidate < current:
                current = candidate
            bound = base[k + 1] if k + 1 < n_offsets else certified_sq
            if n_thresholds == 0:
                if current <= bound:
                    open_[i] = False
                    break
            else:
                met = 0
                while met < n_thresholds and current > thresholds[met]:
                    met += 1
                if met == 0 or bound > thresholds[met - 1]:
                    open_[i] = False
                    break
        best[i] = current
    return best, open_


@njit(cache=True, nogil=True)
def line_extremes(features, axis, high, lo, hi):
    """For each line of features parallel to `axis`, its feature furthest towards `high`."""
    a = 1 if axis == 0 else 0
    b = 1 if axis == 2 else 2
    na = hi[a] - lo[a] + 1
    nb = hi[b] - lo[b] + 1
    unset = np.iinfo(np.int64).min if high else np.iinfo(np.int64).max
    extreme = np.full((na, nb), unset, np.int64)
    for j in range(features.shape[1]):
        ia = features[a, j] - lo[a]
        ib = features[b, j] - lo[b]
        value = features[axis, j]
        if (high and value > extreme[ia, ib]) or (not high and value < extreme[ia, ib]):
            extreme[ia, ib] = value
    count = 0
    for ia in range(na):
        for ib in range(nb):
            if extreme[ia, ib] != unset:
                count += 1
    out = np.empty((3, count), np.int64)
    c = 0
    for ia in range(na):
        for ib in range(nb):
            if extreme[ia, ib] != unset:
                out[a, c] = ia + lo[a]
                out[b, c] = ib + lo[b]
                out[axis, c] = extreme[ia, ib]
                c += 1
    return out


@njit(cache=True, nogil=True)
def nearest_brute(queries, features, spacing):
    """Exact min over features of ((dz*sz)^2 + (dy*sy)^2) + (dx*sx)^2, for each query."""
    out = np.full(queries.shape[1], np.inf)
    for i in range(queries.shape[1]):
        best = np.inf
        for j in range(features.shape[1]):
            d0 = (queries[0, i] - features[0, j]) * spacing[0]
            d1 = (queries[1, i] - features[1, j]) * spacing[1]
            d2 = (queries[2, i] - features[2, j]) * spacing[2]
            d = (d0 * d0 + d1 * d1) + d2 * d2
            if d < best:
                best = d
        out[i] = best
    return out


@njit(cache=True, nogil=True)
def surface_points(padded, n_voxels):
    """Voxel-surface indices and surfel corners (with codes) of a zero-padded uint8 crop.

    One pass. Voxel i of the crop is padded[i + 1]; corner j of the padded grid lies between
    padded voxels j and j + 1. A corner's code is (column(x) << 1) | column(x + 1), where a
    column packs its 2x2 (z, y) voxels in bits 6, 4, 2, 0: DeepMind's bit order (see
    `masks.neighbour_codes`). `n_voxels` (the mask's voxel count) bounds the surface size.
    """
    nz, ny, nx = padded.shape
    voxels = np.empty((3, n_voxels), np.int32)
    corners = np.empty((3, (nz - 1) * (ny - 1) * (nx - 1)), np.int32)
    codes = np.empty(corners.shape[1], np.uint8)
    v = 0
    c = 0
    for z in range(nz - 1):
        for y in range(ny - 1):
            right = _column(padded, z, y, 0)
            for x in range(nx - 1):
                left = right
                right = _column(padded, z, y, x + 1)
                code = (left << 1) | right
                if code != 0 and code != 255:
                    corners[0, c] = z
                    corners[1, c] = y
                    corners[2, c] = x
                    codes[c] = code
                    c += 1
                if (
                    z >= 1
                    and y >= 1
                    and x >= 1
                    and padded[z, y, x]
                    and not (
                        padded[z - 1, y, x]
                        and padded[z + 1, y, x]
                        and padded[z, y - 1, x]
                        and padded[z, y + 1, x]
                        and padded[z, y, x - 1]
                        and padded[z, y, x + 1]
                    )
                ):
                    voxels[0, v] = z - 1
                    voxels[1, v] = y - 1
                    voxels[2, v] = x - 1
                    v += 1
    return voxels[:, :v], corners[:, :c], codes[:c]


@njit(cache=True, inline="always")
def _column(p, z, y, x):
    return (p[z, y, x] << 6) | (p[z, y + 1, x] << 4) | (p[z + 1, y, x] << 2) | p[z + 1, y + 1, x]
