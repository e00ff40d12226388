"""Exact nearest-neighbour distances between two sets of grid points, in mm.

Why not a distance transform or a KD-tree alone: a distance transform costs per voxel of the
box that holds both sets (a far false positive makes that box huge), and a KD-tree costs about
2 us per query on thick-slice CT, where many surface points tie. Surface points of two
segmentations of one lesion are mostly within a few voxels of each other, so we search
outward from each query:

1. Along the finest axis (the "run" axis, x for CT) a table gives, for every row holding
   features, the number of steps from each position to the nearest feature in that row
   (stored between the row's first and last feature; beyond them it is the distance to the
   nearer end). It depends on the features only, so a mask keeps its tables between pairs.
2. Rows are visited in order of their distance from the query's row ((dz, dy) offsets sorted
   by (dz*sz)^2 + (dy*sy)^2). A query is final once its best candidate is no larger than the
   next offset's row distance: no later row can hold a nearer feature. A query whose own
   slice holds no feature within reach (a lesion's cap, one thick slice from the other mask's)
   skips that slice's rows at once.
3. Queries still open after the search limit (far false positives, holes) are answered
   exactly by `exact.exact_squared_mm`.

`pair_distances` runs the four searches of a pair (both voxel surfaces, both surfel sets) and
their fallbacks in one compiled call.

Points are (3, N) integer arrays, one row per array axis (z, y, x). Squared distances are
summed in axis order, ((dz*sz)^2 + (dy*sy)^2) + (dx*sx)^2, as
`scipy.ndimage.distance_transform_edt` sums them, so values match the peers bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from bench.evaluate import _kernels
from bench.evaluate.exact import BRUTE_FORCE_PAIRS, exact_squared_mm
from bench.evaluate.exact import bounds as _bounds

# Offsets visited per query before the fallback takes over: a table lookup costs ~5 ns, a
# KD-tree query ~2 us, so a few hundred offsets are still cheaper than the tree.
MAX_OFFSETS = 320
# How far the outward search goes before the exact fallback (changes the speed only).
SEARCH_MM = 10.0
_NO_THRESHOLDS = np.zeros(0)


def _run_axis(spacing: np.ndarray) -> int:
    """The finest axis (the last one among ties, for memory order)."""
    return int(len(spacing) - 1 - np.argmin(spacing[::-1]))


@dataclass(frozen=True)
class _Offsets:
    """The search plan for one spacing and limit (see `_offsets`)."""

    run: int  # the run axis
    order: list[int]  # array axes in (a, b, run) order
    da: np.ndarray
    db: np.ndarray
    base: np.ndarray
    terms: np.ndarray
    certified_sq: float
    reach: np.ndarray  # (3,) int64, furthest offset on a, b; steps within the limit on run

    def compiled(self) -> tuple:
        """The plan as `_kernels.pair_search` takes it."""
        return self.da, self.db, self.base, self.terms, self.certified_sq, self.reach


@lru_cache(maxsize=32)
def _offsets(spacing: tuple[float, float, float], limit_mm: float) -> _Offsets:
    """Row offsets (da, db) on the two loop axes, nearest first, with their squared mm.

    base[k] is offset k's squared mm, terms[k, j] its squared mm on array axis j (0 on the
    run axis), kept for summing in axis order; every offset left out is at least
    sqrt(certified_sq) mm long. Cached: computed once per spacing, not per call.
    """
    run = _run_axis(np.asarray(spacing))
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
    da, db = da[order], db[order]
    run_reach = int(np.floor(limit_mm / spacing[run]))
    return _Offsets(
        run=run,
        order=[*loop, run],
        da=da,
        db=db,
        base=base[order],
        terms=terms[order],
        certified_sq=certified_sq,
        reach=np.array([np.abs(da).max(), np.abs(db).max(), run_reach], np.int64),
    )


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


@dataclass(frozen=True)
class _RowIndex:
    """A `_kernels.row_table` of one feature set, with the box its row numbers refer to."""

    lo: np.ndarray  # (3,) int64, features' box in (a, b, run) axis order
    hi: np.ndarray
    n_b: int  # rows per step on axis a
    rows: np.ndarray
    values: np.ndarray
    slices: np.ndarray

    def compiled(self) -> tuple:
        """The table as `_kernels.pair_search` takes it."""
        return self.lo, self.hi, self.n_b, self.rows, self.values, self.slices


def _row_index(
    features: np.ndarray, order: list[int], reach: np.ndarray, cache: dict | None
) -> _RowIndex:
    """The row table of `features`, from `cache` when this reach was indexed before.

    The table does not depend on the queries, so a mask scored against several others (every
    rater pair of a study) indexes each of its surfaces once. Rows are padded by 2 * reach on
    the loop axes: every offset of a query within reach of the box stays inside the table.
    """
    key = (order[-1], *reach.tolist())
    if cache is not None and key in cache:
        return cache[key]
    f = features if order == [0, 1, 2] else features[order]
    index = _RowIndex(*_kernels.row_table(f, reach, int(reach[2]) + 1))
    if cache is not None:
        cache[key] = index
    return index


def _search(
    queries: np.ndarray,
    features: np.ndarray,
    spacing: np.ndarray,
    limit_mm: float,
    thresholds_sq: np.ndarray | None = None,
    cache: dict | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Outward row search. Returns (best squared mm, open, lower_sq) for every query.

    An open query's best value is only an upper bound; its true squared distance is at least
    `lower_sq`. Closed queries are exact, or, with `thresholds_sq` (ascending), only exact
    about which thresholds they are within: a query closes as soon as no later offset could
    move it below another threshold, long before its exact distance is certified. `cache`
    keeps the compiled path's row index of `features` (see `nearest_squared_mm`).
    """
    plan = _offsets(tuple(spacing.tolist()), float(limit_mm))
    run, order, reach = plan.run, plan.order, plan.reach
    da, db, base, terms, certified_sq = plan.da, plan.db, plan.base, plan.terms, plan.certified_sq
    cap = int(reach[2]) + 1  # steps beyond reach on the run axis are beyond the limit
    # Every offset left out, and every feature or query beyond `reach` of the other set's
    # box, is at least sqrt(certified_sq) mm away: such features cannot be nearest to a
    # query the loop closes, and such queries stay open.
    if _kernels.HAVE_NUMBA and cap < 2**16:  # the row table holds uint16 steps
        index = _row_index(features, order, reach, cache)
        best, open_ = _kernels.row_query(
            queries if order == [0, 1, 2] else queries[order],
            index.lo,
            index.hi,
            reach,
            index.n_b,
            index.rows,
            index.values,
            index.slices,
            da,
            da * index.n_b + db,
            base,
            terms,
            run,
            certified_sq,
            _NO_THRESHOLDS if thresholds_sq is None else thresholds_sq,
            float(spacing[run]),
        )
        return best, open_, certified_sq
    q = queries[order]
    f = features[order]
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
    search_mm: float = SEARCH_MM,
    cache: dict | None = None,
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
        queries, features, spacing, max(search_mm, upper * (1 + 1e-6)), thresholds, cache
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
    search_mm: float = SEARCH_MM,
    cache: dict | None = None,
) -> np.ndarray:
    """Squared distance in mm^2 from each query point to its nearest feature point.

    Both are (3, N) integer grid indices, one row per axis (z, y, x), on one grid with
    `spacing_zyx_mm`. Exact for every query; with `upper_mm`, distances above it are reported
    as inf (enough for the surface Dice, and cheaper). `search_mm` bounds the outward row
    search and changes only the speed. Empty `features` give inf everywhere. `cache`: a dict
    that lives with `features` (the same points on every call with it), where the compiled
    path keeps its index of them between calls.
    """
    spacing = np.asarray(spacing_zyx_mm, np.float64)
    queries = np.asarray(queries).reshape(3, -1)
    features = np.asarray(features).reshape(3, -1)
    if features.shape[1] == 0 or queries.shape[1] == 0:
        return np.full(queries.shape[1], np.inf)
    if upper_mm is None:
        best, open_, _ = _search(queries, features, spacing, search_mm, None, cache)
    else:
        # A hair beyond the bound: sqrt can round a square just above upper^2 down to upper,
        # and the peers compare the rooted distance with the tolerance.
        bound_sq = upper_mm**2 * (1 + 1e-9)
        best, open_, lower_sq = _search(
            queries, features, spacing, max(search_mm, upper_mm * (1 + 1e-6)), None, cache
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


def pair_distances(
    points: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    spacing_zyx_mm: tuple[float, float, float],
    tolerances_mm: tuple[float, ...],
    caches: tuple[dict, dict, dict, dict],
    search_mm: float = SEARCH_MM,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """The four searches of a pair of surfaces in one compiled call.

    `points` are (reference voxels, test voxels, reference surfels, test surfels), non-empty,
    `caches` theirs (see `nearest_squared_mm`). Returns (reference-to-test mm, test-to-
    reference mm, reference surfel classes, test surfel classes): `nearest_squared_mm`
    rooted and `tolerance_classes`, value for value. None where the compiled path does not
    apply (no numba, run axis not last, steps beyond uint16, too many far queries for brute
    force): the caller makes the four calls instead.
    """
    if not _kernels.HAVE_NUMBA:
        return None
    spacing = tuple(float(s) for s in spacing_zyx_mm)
    tolerances = tuple(sorted(float(t) for t in tolerances_mm))
    exact = _offsets(spacing, float(search_mm))
    classes = _offsets(spacing, max(search_mm, tolerances[-1] * (1 + 1e-6)))
    if exact.run != 2 or max(exact.reach[2], classes.reach[2]) + 1 >= 2**16:
        return None
    plans = (exact, exact, classes, classes)
    tables = tuple(
        _row_index(points[k], plans[k].order, plans[k].reach, caches[k]).compiled()
        for k in range(4)
    )
    found = _kernels.pair_search(
        points,
        tables,
        exact.compiled(),
        classes.compiled(),
        _sqrt_thresholds(tolerances),
        np.asarray(spacing),
        100 * BRUTE_FORCE_PAIRS,
    )
    return found[:4] if found[4] else None
