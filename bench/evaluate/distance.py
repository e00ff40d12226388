"""Nearest-surface distances between two masks, exact, and the reducers that read them (numba).

Why not a distance transform or a KD-tree: a distance transform costs per voxel of the box that
holds both surfaces (a far false positive makes that box huge), and a KD-tree costs about 2 us
per query on thick-slice CT, where many surface points tie. Surface points of two segmentations
of one lesion are mostly within a few voxels of each other, so each query searches outward:

1. Along the finest axis (the "run" axis, x for CT) a table gives, for every row holding
   features, the steps from each position to the row's nearest feature (`row_table`).
2. Rows are visited nearest first ((da, db) offsets sorted by their squared mm). A query is
   final once its best candidate is no larger than the next offset's row distance; with
   tolerances (surface Dice), once no later row can move it below another tolerance. A query
   whose own slice holds no feature within reach (a lesion's cap) skips that slice's rows.
3. Queries still open after the search limit (far false positives, holes) are answered exactly
   by `_exact`, which visits the features plane by plane, nearest plane first.

Points are (3, N) integer grid indices in (z, y, x) order. Squared distances are summed in axis
order, ((dz*sz)^2 + (dy*sy)^2) + (dx*sx)^2, as `scipy.ndimage.distance_transform_edt` sums
them, so values match the peers bit for bit. No library searches this way; hence numba.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numba import njit

# Row offsets visited per query before the exact fallback: a table lookup costs ~5 ns, a
# KD-tree query ~2 us, so a few hundred offsets are still cheap.
MAX_OFFSETS = 320
# How far the outward search goes before the exact fallback (changes the speed only).
SEARCH_MM = 10.0


@dataclass(frozen=True)
class SearchPlan:
    """Row offsets for one spacing, grid shape and search limit, nearest first (`search_plan`)."""

    order: np.ndarray  # (3,) array axes in (a, b, run) order: the run axis last
    da: np.ndarray  # offset k's steps on axis a and b
    db: np.ndarray
    base: np.ndarray  # offset k's squared mm
    terms: np.ndarray  # (K, 3) its squared mm per array axis (0 on the run axis)
    certified_sq: float  # every offset left out is at least this long (squared mm)
    reach: np.ndarray  # (3,) furthest step on a, b; steps within the limit on the run axis

    def compiled(self) -> tuple:
        """The plan as the kernels take it."""
        return self.order, self.da, self.db, self.base, self.terms, self.certified_sq, self.reach


@lru_cache(maxsize=64)
def search_plan(
    spacing_zyx_mm: tuple[float, float, float], shape_zyx: tuple[int, int, int], limit_mm: float
) -> SearchPlan:
    """The offsets within `limit_mm`, at most `MAX_OFFSETS` of them. No offset goes beyond the
    grid's extent (no two points of it are further apart), so the plan's size is bounded by
    the grid however fine the spacing. Cached: computed once per spacing and shape."""
    spacing = np.asarray(spacing_zyx_mm, np.float64)
    run = int(2 - np.argmin(spacing[::-1]))  # the finest axis, the last one among ties
    loop = [k for k in range(3) if k != run]

    def steps(axis: int) -> int:
        return int(min(np.floor(limit_mm / spacing[axis]), max(shape_zyx[axis] - 1, 0)))

    da, db = np.meshgrid(
        np.arange(-steps(loop[0]), steps(loop[0]) + 1),
        np.arange(-steps(loop[1]), steps(loop[1]) + 1),
        indexing="ij",
    )
    da, db = da.ravel(), db.ravel()
    terms = np.zeros((da.size, 3))
    terms[:, loop[0]] = (da * spacing[loop[0]]) ** 2
    terms[:, loop[1]] = (db * spacing[loop[1]]) ** 2
    base = terms.sum(axis=1)
    kept = np.argsort(base, kind="stable")
    kept = kept[base[kept] <= limit_mm**2]
    certified_sq = float(limit_mm**2)
    if kept.size > MAX_OFFSETS:
        certified_sq = float(base[kept[MAX_OFFSETS]])
        kept = kept[:MAX_OFFSETS]
    da, db = da[kept], db[kept]
    return SearchPlan(
        order=np.array([*loop, run], np.int64),
        da=da,
        db=db,
        base=base[kept],
        terms=terms[kept],
        certified_sq=certified_sq,
        reach=np.array([np.abs(da).max(), np.abs(db).max(), steps(run)], np.int64),
    )


@lru_cache(maxsize=32)
def sqrt_thresholds(tolerances_mm: tuple[float, ...]) -> np.ndarray:
    """For each tolerance t (ascending), the largest double x with sqrt(x) <= t: comparing
    squares with these is exactly `sqrt(square) <= t`, the peers' comparison."""
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


@njit(cache=True, nogil=True)
def row_table(f, reach, cap):
    """Steps along the run axis to the nearest feature of the same row, for the rows that hold
    features, between each row's first and last feature only.

    `f` is (3, M) points in (a, b, run) order. Rows cover the features' box [lo, hi] padded by
    2 * reach on the loop axes (no offset of a query within reach of the box leaves the table):
    row (a, b) is number (a - lo[0] + 2 * reach[0]) * n_b + (b - lo[1] + 2 * reach[1]). Returns
    (lo, hi, n_b, rows, values, slices): rows[r] is (run position of the row's first feature,
    start in values, length), values the steps (at most `cap`) from each position of that
    span; beyond it `_row_steps` measures to the span's nearer end. An empty row reads cell 0
    (cap). slices[a] is the box (b from, to; run from, to) of slice a's features.
    """
    m = f.shape[1]
    lo = np.empty(3, np.int64)
    hi = np.empty(3, np.int64)
    for k in range(3):
        lo[k] = f[k].min()
        hi[k] = f[k].max()
    pad_a, pad_b = 2 * reach[0], 2 * reach[1]
    n_a = hi[0] - lo[0] + 1 + 2 * pad_a
    n_b = hi[1] - lo[1] + 1 + 2 * pad_b
    # Points as (row, run position) in one sortable number, the position in the low bits.
    bits = 1
    while (1 << bits) <= hi[2] - lo[2]:
        bits += 1
    code = np.empty(m, np.int64)
    in_order = True
    for j in range(m):
        row = (f[0, j] - lo[0] + pad_a) * n_b + (f[1, j] - lo[1] + pad_b)
        code[j] = (row << bits) | (f[2, j] - lo[2])
        if j and code[j] <= code[j - 1]:
            in_order = False
    if not in_order:  # points of several boxes joined
        code = np.sort(code)
    key = code >> bits
    xs = (code & ((1 << bits) - 1)) + lo[2]
    rows = np.empty((n_a * n_b, 3), np.int32)
    rows[:, 0] = -(2**30)
    rows[:, 1] = 0
    rows[:, 2] = 1
    slices = np.empty((n_a, 4), np.int64)
    slices[:, 0] = slices[:, 2] = np.iinfo(np.int64).max // 2
    slices[:, 1] = slices[:, 3] = np.iinfo(np.int64).min // 2
    total = 1
    begin = 0
    for j in range(1, m + 1):  # each run of one row: its span and its slice's box
        if j == m or key[j] != key[begin]:
            r = key[begin]
            rows[r, 0] = xs[begin]
            rows[r, 1] = total
            rows[r, 2] = xs[j - 1] - xs[begin] + 1
            total += rows[r, 2]
            a = r // n_b
            b = r % n_b + lo[1] - pad_b
            slices[a, 0] = min(slices[a, 0], b)
            slices[a, 1] = max(slices[a, 1], b)
            slices[a, 2] = min(slices[a, 2], xs[begin])
            slices[a, 3] = max(slices[a, 3], xs[j - 1])
            begin = j
    values = np.empty(total, np.uint16)
    values[0] = cap
    begin = 0
    for j in range(1, m + 1):
        if j == m or key[j] != key[begin]:
            at = rows[key[begin], 1] - rows[key[begin], 0]  # position x is values[at + x]
            prev = xs[begin]
            values[at + prev] = 0
            for i in range(begin + 1, j):  # between two features: steps to the nearer one
                nxt = xs[i]
                for x in range(prev + 1, nxt + 1):
                    values[at + x] = min(x - prev, nxt - x, cap)
                prev = nxt
            begin = j
    return lo, hi, n_b, rows, values, slices


@njit(cache=True, nogil=True, inline="always")
def _row_steps(rows, values, r, x, cap):
    """Steps from run position x to the nearest feature of table row r, at most cap. No
    branch: a mispredicted one per offset would cost more than the lookup."""
    cell = x - rows[r, 0]
    length = rows[r, 2]
    stored = values[rows[r, 1] + min(max(cell, 0), length - 1)]
    return min(max(stored, -cell, cell - length + 1), cap)


@njit(cache=True, nogil=True)
def _row_query(q, table, plan, thresholds, run_spacing):
    """The outward row search of (3, N) queries `q` in (a, b, run) order over a `row_table`.

    Returns (best squared mm, open): queries beyond reach of the features' box, and queries
    not closed within the offsets, are open (their best is an upper bound). With
    `thresholds` (ascending squared mm) a query closes once no later offset can move it below
    another threshold, long before its exact distance is certified.
    """
    lo, hi, n_b, rows, values, slices = table
    order, da, db, base, terms, certified_sq, reach = plan
    run = order[2]
    jumps = da * n_b + db
    n = q.shape[1]
    best = np.full(n, np.inf)
    open_ = np.ones(n, np.bool_)
    r0, r1, r2 = reach[0], reach[1], reach[2]
    cap = r2 + 1
    squares = np.empty(cap + 1)
    for s in range(cap):
        squares[s] = (s * run_spacing) ** 2
    squares[cap] = np.inf
    n_offsets = base.shape[0]
    n_thresholds = thresholds.shape[0]
    bound = np.empty(n_offsets)  # after offset k, no later offset is nearer than bound[k]
    bound[:-1] = base[1:]
    bound[-1] = certified_sq
    # With `met` thresholds below its best, a query is final from offset close_at[met] on.
    close_at = np.zeros(n_thresholds + 1, np.int64)
    for m in range(1, n_thresholds + 1):
        k = 0
        while k < n_offsets and not bound[k] > thresholds[m - 1]:
            k += 1
        close_at[m] = k
    in_plane = 0  # the offsets on the query's own slice come first
    while in_plane < n_offsets and da[in_plane] == 0:
        in_plane += 1
    exact_last = n_thresholds == 0 and run == 2  # the usual case: a quarter faster alone
    a_from, a_to, b_from, b_to = lo[0] - r0, hi[0] + r0, lo[1] - r1, hi[1] + r1
    x_from, x_to = lo[2] - r2, hi[2] + r2
    a_shift, b_shift = 2 * r0 - lo[0], 2 * r1 - lo[1]
    for i in range(n):
        za, ya, x = q[0, i], q[1, i], q[2, i]
        if za < a_from or za > a_to or ya < b_from or ya > b_to or x < x_from or x > x_to:
            continue
        a = za + a_shift
        origin = a * n_b + (ya + b_shift)
        away = (
            (slices[a, 0] > ya + r1)
            | (slices[a, 1] < ya - r1)
            | (slices[a, 2] > x + r2)
            | (slices[a, 3] < x - r2)
        )
        first = in_plane if away else 0  # no feature of its own slice within reach
        current = np.inf
        met = n_thresholds
        if exact_last:
            for k in range(n_offsets):
                if k < first:
                    continue
                steps = _row_steps(rows, values, origin + jumps[k], x, cap)
                current = min(current, squares[steps] + base[k])
                if current <= bound[k]:
                    open_[i] = False
                    break
            best[i] = current
            continue
        for k in range(n_offsets):
            if k < first:
                continue
            gathered = squares[_row_steps(rows, values, origin + jumps[k], x, cap)]
            if run == 2:
                candidate = gathered + base[k]
            elif run == 1:  # summed in array-axis order, as the peers sum
                candidate = (terms[k, 0] + gathered) + terms[k, 2]
            else:
                candidate = (gathered + terms[k, 1]) + terms[k, 2]
            current = min(current, candidate)
            if n_thresholds == 0:
                if current <= bound[k]:
                    open_[i] = False
                    break
            else:
                while met > 0 and current <= thresholds[met - 1]:
                    met -= 1
                if k >= close_at[met]:
                    open_[i] = False
                    break
        best[i] = current
    return best, open_


@njit(cache=True, nogil=True)
def _squared(q, i, f, j, spacing):
    """Squared mm between query i and feature j, summed in axis order."""
    d0 = (q[0, i] - f[0, j]) * spacing[0]
    d1 = (q[1, i] - f[1, j]) * spacing[1]
    d2 = (q[2, i] - f[2, j]) * spacing[2]
    return (d0 * d0 + d1 * d1) + d2 * d2


@njit(cache=True, nogil=True)
def _planes(f, axis):
    """The features grouped by their plane along `axis` (a counting sort): (lo, starts,
    members), plane p (index lo + p) holding features members[starts[p]:starts[p + 1]]."""
    lo = f[axis].min()
    n = f[axis].max() - lo + 1
    starts = np.zeros(n + 1, np.int64)
    for j in range(f.shape[1]):
        starts[f[axis, j] - lo + 1] += 1
    for p in range(n):
        starts[p + 1] += starts[p]
    fill = starts[:-1].copy()
    members = np.empty(f.shape[1], np.int64)
    for j in range(f.shape[1]):
        p = f[axis, j] - lo
        members[fill[p]] = j
        fill[p] += 1
    return lo, starts, members


@njit(cache=True, nogil=True)
def _exact(q, f, best, open_, spacing):
    """Exact squared mm for the open queries, in place (far false positives, big holes).

    Each query visits the features plane by plane along one axis, nearest plane first, and
    stops at a plane further than its best: rounding never makes a sum of non-negative terms
    smaller than one of them, so the result is the brute force's, bit for bit. The axis is
    the one along which the query lies furthest beyond the features' box (inside it: the axis
    with the most planes), so a false positive 100 mm away reads a plane or two.
    """
    lo = np.empty(3, np.int64)
    hi = np.empty(3, np.int64)
    for k in range(3):
        lo[k] = f[k].min()
        hi[k] = f[k].max()
    widest = np.argmax(hi - lo)
    axis_of = np.full(q.shape[1], -1, np.int64)
    for i in range(q.shape[1]):
        if open_[i]:
            axis_of[i] = widest
            furthest = 0.0
            for k in range(3):
                beyond = max(lo[k] - q[k, i], q[k, i] - hi[k], 0) * spacing[k]
                if beyond > furthest:
                    axis_of[i], furthest = k, beyond
    for axis in range(3):
        if not (axis_of == axis).any():
            continue
        first, starts, members = _planes(f, axis)
        n = starts.shape[0] - 1
        for i in range(q.shape[1]):
            if axis_of[i] != axis:
                continue
            c = q[axis, i] - first
            found = best[i]
            for step in range(max(0, -c, c - (n - 1)), max(c, n - 1 - c) + 1):
                along = step * spacing[axis]
                if along * along > found:
                    break
                for side in range(2 if step else 1):
                    p = c + step if side else c - step
                    if p < 0 or p >= n:
                        continue
                    for j in members[starts[p] : starts[p + 1]]:
                        found = min(found, _squared(q, i, f, j, spacing))
            best[i] = found
            open_[i] = False


@njit(cache=True, nogil=True)
def _permuted(points, order):
    """(3, N) points with their rows in `order`: a copy."""
    out = np.empty_like(points)
    for k in range(3):
        out[k] = points[order[k]]
    return out


@njit(cache=True, nogil=True)
def _within_reach(features, queries, reach):
    """The features within `reach` (steps per array axis) of the queries' box: any other is
    at least the search limit from every query, so it is never nearest to a query the search
    closes (open ones are settled against all features). All of them when none would stay."""
    lo = np.empty(3, np.int64)
    hi = np.empty(3, np.int64)
    for k in range(3):
        lo[k] = queries[k].min() - reach[k]
        hi[k] = queries[k].max() + reach[k]
    keep = np.ones(features.shape[1], np.bool_)
    for j in range(features.shape[1]):
        for k in range(3):
            if features[k, j] < lo[k] or features[k, j] > hi[k]:
                keep[j] = False
    kept = np.flatnonzero(keep)
    if kept.size == features.shape[1] or kept.size == 0:
        return features
    out = np.empty((3, kept.size), features.dtype)
    for k in range(3):
        out[k] = features[k][kept]
    return out


@njit(cache=True, nogil=True)
def directed(q, f, plan, thresholds, spacing):
    """Squared mm from each query to the nearest feature, both (3, N) int32 (z, y, x), N and
    M > 0: exact, or with `thresholds` exact about which thresholds it is within."""
    order, reach = plan[0], plan[6]
    reach_zyx = np.empty(3, np.int64)
    for k in range(3):
        reach_zyx[order[k]] = reach[k]
    near = _within_reach(f, q, reach_zyx)
    if order[2] != 2:
        near, q_run = _permuted(near, order), _permuted(q, order)
    else:
        q_run = q
    table = row_table(near, reach, reach[2] + 1)
    best, open_ = _row_query(q_run, table, plan, thresholds, spacing[order[2]])
    if thresholds.size and plan[5] > thresholds[-1]:
        open_[:] = False  # every open query is beyond the largest tolerance
    _exact(q, f, best, open_, spacing)
    return best


@njit(cache=True, nogil=True)
def _classes(best, thresholds):
    """For each squared distance, how many thresholds lie below it (`np.searchsorted`)."""
    out = np.empty(best.shape[0], np.int64)
    for i in range(best.shape[0]):
        met = 0
        while met < thresholds.shape[0] and thresholds[met] < best[i]:
            met += 1
        out[i] = met
    return out


@njit(cache=True, nogil=True)
def _percentile(values, q):
    """`np.percentile(values, q)` (linear interpolation) bit for bit, from one partition."""
    n = values.shape[0]
    virtual = (n - 1) * (q / 100)
    if virtual >= n - 1:
        return values.max()
    below = int(np.floor(virtual))
    gamma = virtual - below
    part = np.partition(values, below)
    low = part[below]
    high = part[below + 1 :].min()  # the next order statistic
    step = high - low
    if gamma >= 0.5:
        return high - step * (1 - gamma)
    return low + step * gamma


@njit(cache=True, nogil=True)
def surface_summary(points, areas, exact_plan, class_plan, thresholds, spacing):
    """What HD95, ASD and the surface Dice read, for two non-empty masks A and B.

    `points` is (A's voxel surface, B's, A's surfels, B's), `areas` the surfels' areas.
    Returns (95th percentiles of A-to-B, B-to-A and both pooled [mm], sums of A-to-B and
    B-to-A [mm], surface Dice per threshold): every reducer of the pair, written once. Both
    surfaces' areas are added in either order alike: a pair and its swap agree bit for bit.
    """
    vox_a, vox_b, surf_a, surf_b = points
    to_b = np.sqrt(directed(vox_a, vox_b, exact_plan, thresholds[:0], spacing))
    to_a = np.sqrt(directed(vox_b, vox_a, exact_plan, thresholds[:0], spacing))
    percentiles = np.empty(3)
    percentiles[0] = _percentile(to_b, 95.0)
    percentiles[1] = _percentile(to_a, 95.0)
    percentiles[2] = _percentile(np.concatenate((to_b, to_a)), 95.0)
    sums = np.array([to_b.sum(), to_a.sum()])
    within = _area_within(surf_a, surf_b, areas[0], class_plan, thresholds, spacing)
    within += _area_within(surf_b, surf_a, areas[1], class_plan, thresholds, spacing)
    return percentiles, sums, within[:-1] / within[-1]


@njit(cache=True, nogil=True)
def _area_within(q, f, areas, plan, thresholds, spacing):
    """The area of the surfels `q` within each threshold of `f` (cumulative; the last entry
    is their total area). When every surfel is within the first, the later classes add
    exact zeros: the surface Dice comes out exactly 1.0."""
    classes = _classes(directed(q, f, plan, thresholds, spacing), thresholds)
    per_class = np.zeros(thresholds.shape[0] + 1)
    for i in range(classes.shape[0]):
        per_class[classes[i]] += areas[i]
    return np.cumsum(per_class)
