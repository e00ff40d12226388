"""Exact nearest-neighbour distances between two sets of grid points, in mm.

Why not a distance transform or a KD-tree alone: a distance transform costs per voxel of the
box that holds both sets (a far false positive makes that box huge), and a KD-tree costs about
2 us per query on thick-slice CT, where many surface points tie. Surface points of two
segmentations of one lesion are mostly within a few voxels of each other, so we search
outward from each query:

1. Along the finest axis (the "run" axis, x for CT) a table gives, for every row of the
   feature box, the number of steps from each position to the nearest feature in that row.
2. Rows are visited in order of their distance from the query's row ((dz, dy) offsets sorted
   by (dz*sz)^2 + (dy*sy)^2). A query is final once its best candidate is no larger than the
   next offset's row distance: no later row can hold a nearer feature.
3. Queries still open after the search limit (far false positives, holes) are answered
   exactly by `exact.exact_squared_mm`.

Points are (3, N) integer arrays, one row per array axis (z, y, x). Squared distances are
summed in axis order, ((dz*sz)^2 + (dy*sy)^2) + (dx*sx)^2, as
`scipy.ndimage.distance_transform_edt` sums them, so values match the peers bit for bit.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from bench.evaluate import _kernels
from bench.evaluate.exact import bounds as _bounds
from bench.evaluate.exact import exact_squared_mm

# Offsets visited per query before the fallback takes over: a table lookup costs ~5 ns, a
# KD-tree query ~2 us, so a few hundred offsets are still cheaper than the tree.
MAX_OFFSETS = 320


def _run_axis(spacing: np.ndarray) -> int:
    """The finest axis (the last one among ties, for memory order)."""
    return int(len(spacing) - 1 - np.argmin(spacing[::-1]))


@lru_cache(maxsize=32)
def _offsets(
    spacing: tuple[float, float, float], run: int, limit_mm: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Row offsets (da, db) on the two loop axes, nearest first, with their squared mm.

    Returns (da, db, base, terms, certified_sq): terms[:, k] is the squared mm of the offset
    on array axis k (0 on the run axis), kept for summing in axis order; every offset left
    out is at least sqrt(certified_sq) mm long.
    """
    loop = [k for k in range(3) if k != run]
    reach = [int(np.floor(limit_mm / spacing[k])) for k in loop]
    da, db = np.meshgrid(
        np.arange(-reach[0], reach[0] + 1), np.arange(-reach[1], reach[1] + 1), indexing="ij"
    )
    da, db = da.ravel(), db.ravel()
    terms = np.zeros((da.size, 3))
    terms[:, loop[0]] = (da * spacing[loop[0]]) ** 2
    terms[:, loop[1]] = (db * spacing[loop[1]]) ** 2
    base = terms.sum(axis=1)
    order = np.argsort(base, kind="stable")
    order = order[base[order] <= limit_mm**2]
    certified_sq = float(limit_mm**2)
    if order.size > MAX_OFFSETS:
        certified_sq = float(base[order[MAX_OFFSETS]])
        order = order[:MAX_OFFSETS]
    return da[order], db[order], base[order], terms[order], certified_sq


def _inside(points: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Which (3, N) points lie in the inclusive box [lo, hi]."""
    keep = (points[0] >= lo[0]) & (points[0] <= hi[0])
    for k in (1, 2):
        keep &= points[k] >= lo[k]
        keep &= points[k] <= hi[k]
    return keep


def _row_steps(keys: np.ndarray, size: int, cap: int) -> np.ndarray:
    """Steps from each of `size` cells to the nearest of the sorted feature cells `keys`.

    Rows are laid end to end; each row has at least `cap - 1` empty cells at both ends, so a
    feature of another row is always at least `cap` steps away, which is the value beyond
    reach anyway: no per-row bookkeeping is needed.
    """
    dtype = np.uint8 if cap <= 255 else np.uint16
    cells = np.arange(size, dtype=keys.dtype)
    far = np.array(size + cap, keys.dtype)
    before = np.empty(size, keys.dtype)
    before[: keys[0]] = -far
    before[keys[0] :] = np.repeat(keys, np.diff(keys, append=size))
    after = np.empty(size, keys.dtype)
    after[keys[-1] + 1 :] = far
    after[: keys[-1] + 1] = np.repeat(keys, np.diff(keys, prepend=-1))
    np.subtract(cells, before, out=before)
    np.subtract(after, cells, out=after)
    np.minimum(before, after, out=before)
    np.minimum(before, cap, out=before)
    return before.astype(dtype)


def _search(
    queries: np.ndarray,
    features: np.ndarray,
    spacing: np.ndarray,
    limit_mm: float,
    thresholds_sq: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Outward row search. Returns (best squared mm, open, lower_sq) for every query.

    An open query's best value is only an upper bound; its true squared distance is at least
    `lower_sq`. Closed queries are exact, or, with `thresholds_sq` (ascending), only exact
    about which thresholds they are within: a query closes as soon as no later offset could
    move it below another threshold, long before its exact distance is certified.
    """
    run = _run_axis(spacing)
    loop = [k for k in range(3) if k != run]
    order = [*loop, run]
    da, db, base, terms, certified_sq = _offsets(tuple(float(s) for s in spacing), run, limit_mm)
    reach = np.array([np.abs(da).max(), np.abs(db).max(), int(np.floor(limit_mm / spacing[run]))])
    cap = int(reach[2]) + 1  # steps beyond reach on the run axis are beyond the limit
    # Every offset left out, and every feature or query beyond `reach` of the other set's
    # box, is at least sqrt(certified_sq) mm away: such features cannot be nearest to a
    # query the loop closes, and such queries stay open.
    q = queries[order]
    f = features[order]
    if _kernels.HAVE_NUMBA:
        best, open_ = _kernels.row_search(
            q.astype(np.int64),
            f.astype(np.int64),
            reach.astype(np.int64),
            da.astype(np.int64),
            db.astype(np.int64),
            base,
            np.ascontiguousarray(terms),
            run,
            certified_sq,
            np.zeros(0) if thresholds_sq is None else thresholds_sq,
            float(spacing[run]),
        )
        return best, open_, certified_sq
    best = np.full(queries.shape[1], np.inf)
    open_ = np.ones(queries.shape[1], bool)
    q_lo, q_hi = _bounds(q)
    f_lo, f_hi = _bounds(f)
    if np.any(f_lo < q_lo - reach) or np.any(f_hi > q_hi + reach):
        f = f[:, _inside(f, q_lo - reach, q_hi + reach)]
        if f.shape[1] == 0:
            return best, open_, certified_sq
        f_lo, f_hi = _bounds(f)
    lo, hi = f_lo, f_hi
    near = np.flatnonzero(_inside(q, lo - reach, hi + reach))
    if near.size == 0:
        return best, open_, certified_sq

    # Table rows: the feature box padded by 2 * reach on the loop axes (so that no offset of
    # a near query leaves the table) and by reach on the run axis; only rows holding a
    # feature are computed, the rest stay `cap`.
    ta, tb, width = (hi - lo + 1) + 2 * reach * np.array([2, 2, 1])
    dtype = np.int64 if ta * tb * width >= 2**31 else np.int32
    cell = (
        (f[0] - lo[0] + 2 * reach[0]).astype(dtype) * tb + (f[1] - lo[1] + 2 * reach[1])
    ) * width
    cell += f[2] - lo[2] + reach[2]
    if np.any(cell[1:] <= cell[:-1]):  # raster order unless boxes were joined or run != x
        cell.sort()
    row, col = np.divmod(cell, width)
    new_row = np.flatnonzero(np.diff(row, prepend=-1))
    rows = row[new_row]
    compact = np.repeat(np.arange(rows.size, dtype=dtype), np.diff(new_row, append=row.size))
    steps = _row_steps(compact * width + col, rows.size * width, cap)
    table = np.full((ta * tb, width), cap, steps.dtype)
    table[rows] = steps.reshape(rows.size, width)
    table = table.ravel()

    squares = (np.arange(cap + 1) * spacing[run]) ** 2
    squares[cap] = np.inf
    qa = (q[0, near] - lo[0] + 2 * reach[0]).astype(dtype)
    qb = q[1, near] - lo[1] + 2 * reach[1]
    start = (qa * tb + qb) * width + (q[2, near] - lo[2] + reach[2])
    jumps = ((da * tb + db) * width).astype(dtype)
    _loop(
        table,
        squares,
        start,
        jumps,
        base,
        terms,
        run,
        certified_sq,
        thresholds_sq,
        near,
        best,
        open_,
    )
    return best, open_, certified_sq


def _loop(
    table, squares, start, jumps, base, terms, run, certified_sq, thresholds_sq, active, best, open_
):
    """The numpy version of `_kernels.row_search`'s loop: offsets in batches over open queries."""
    current = np.full(active.size, np.inf)
    # Batches grow: most queries are final after a handful of offsets. Laid out (offset,
    # query) so that reductions run along the long axis.
    begin, size = 0, 4
    while begin < base.size and active.size:
        end = min(begin + size, base.size)
        gathered = squares[table[jumps[begin:end, None] + start[None, :]]]
        if run == 2:
            candidates = gathered + base[begin:end, None]
        else:  # keep the axis order of the sum for bit-identical values
            t = terms[begin:end]
            if run == 1:
                candidates = (t[:, 0, None] + gathered) + t[:, 2, None]
            else:
                candidates = (gathered + t[:, 1, None]) + t[:, 2, None]
        np.minimum(current, candidates.min(axis=0), out=current)
        bound = base[end] if end < base.size else certified_sq
        if thresholds_sq is None:
            final = current <= bound
        else:  # final once every threshold below the one it meets is out of reach
            below = np.searchsorted(thresholds_sq, current, side="left") - 1
            final = (below < 0) | (bound > thresholds_sq[np.maximum(below, 0)])
        if final.any():
            done = active[final]
            best[done] = current[final]
            open_[done] = False
            keep = ~final
            active, current, start = active[keep], current[keep], start[keep]
        begin, size = end, min(size * 2, 64)
    best[active] = current


@lru_cache(maxsize=32)
def _sqrt_thresholds(tolerances_mm: tuple[float, ...]) -> np.ndarray:
    """For each tolerance t, the largest double x with sqrt(x) <= t.

    Comparing squares against these is exactly `sqrt(square) <= t`, the comparison the peers
    make on rooted distances, without taking a root per point.
    """
    out = []
    for t in tolerances_mm:
        x = float(t) * float(t)
        while np.sqrt(np.nextafter(x, np.inf)) <= t:
            x = float(np.nextafter(x, np.inf))
        while np.sqrt(x) > t:
            x = float(np.nextafter(x, -np.inf))
        out.append(x)
    thresholds = np.array(out)
    thresholds.setflags(write=False)  # cached and shared
    return thresholds


def tolerance_classes(
    queries: np.ndarray,
    features: np.ndarray,
    spacing_zyx_mm: tuple[float, float, float],
    tolerances_mm: tuple[float, ...],
    search_mm: float = 10.0,
) -> np.ndarray:
    """For each query, the index of the smallest tolerance its distance is within.

    `len(tolerances_mm)` means beyond all of them (or no feature at all). Same points as
    `nearest_squared_mm`; this is what the surface Dice needs, and much cheaper than exact
    distances: a query 1 mm from the other surface is settled by its first row.
    """
    tolerances = np.sort(np.asarray(tolerances_mm, np.float64))
    spacing = np.asarray(spacing_zyx_mm, np.float64)
    queries = np.asarray(queries).reshape(3, -1)
    features = np.asarray(features).reshape(3, -1)
    if features.shape[1] == 0 or queries.shape[1] == 0:
        return np.full(queries.shape[1], tolerances.size)
    thresholds = _sqrt_thresholds(tuple(tolerances.tolist()))
    upper = float(tolerances[-1])
    best, open_, lower_sq = _search(
        queries, features, spacing, max(search_mm, upper * (1 + 1e-6)), thresholds
    )
    if lower_sq > thresholds[-1]:  # every open query is beyond the largest tolerance
        open_[:] = False
    if open_.any():
        left = np.flatnonzero(open_)
        exact = exact_squared_mm(queries[:, left], features, spacing, upper)
        best[left] = np.minimum(best[left], exact)
    return np.searchsorted(thresholds, best, side="left")


def nearest_squared_mm(
    queries: np.ndarray,
    features: np.ndarray,
    spacing_zyx_mm: tuple[float, float, float],
    upper_mm: float | None = None,
    search_mm: float = 10.0,
) -> np.ndarray:
    """Squared distance in mm^2 from each query point to its nearest feature point.

    Both are (3, N) integer grid indices, one row per axis (z, y, x), on one grid with
    `spacing_zyx_mm`. Exact for every query; with `upper_mm`, distances above it are reported
    as inf (enough for the surface Dice, and cheaper). `search_mm` bounds the outward row
    search and changes only the speed. Empty `features` give inf everywhere.
    """
    spacing = np.asarray(spacing_zyx_mm, np.float64)
    queries = np.asarray(queries).reshape(3, -1)
    features = np.asarray(features).reshape(3, -1)
    if features.shape[1] == 0 or queries.shape[1] == 0:
        return np.full(queries.shape[1], np.inf)
    if upper_mm is None:
        best, open_, _ = _search(queries, features, spacing, search_mm)
    else:
        # A hair beyond the bound: sqrt can round a square just above upper^2 down to upper,
        # and the peers compare the rooted distance with the tolerance.
        bound_sq = upper_mm**2 * (1 + 1e-9)
        best, open_, lower_sq = _search(
            queries, features, spacing, max(search_mm, upper_mm * (1 + 1e-6))
        )
        if lower_sq >= bound_sq:  # every open query is beyond the bound
            open_[:] = False
    if open_.any():
        left = np.flatnonzero(open_)
        exact = exact_squared_mm(queries[:, left], features, spacing, upper_mm)
        best[left] = np.minimum(best[left], exact)
    if upper_mm is not None:
        best[best > bound_sq] = np.inf
    return best
