"""Compiled inner loops (numba) for the hot spots, with the numpy versions as fallback.

- Reading the masks (`occupied_profiles`): the only pass over the whole volume, both masks of a
  pair side by side, eight voxels at a time. numpy needs a reduction per axis, each a pass.
- Cutting boxes and extracting surfaces (`split_boxes`, `mask_surfaces`): one pass per box for
  the voxel surface, the surfels and their areas; numpy needs a temporary per neighbour.
- The outward row search (`row_table`, `row_query`, `pair_search`) and its exact fallback: in
  numpy it must run in batches that overshoot each query's stopping point, every step a pass
  over memory; a per-query loop stops exactly where the query is certified. No library does
  nearest-point search this way (KD-trees and distance transforms pay per point or per voxel
  of a box, see `distance.py`).

- A single pair (`score_pair_once`): all of the above and the reducers in one call, since
  after the pass over the volumes every Python step between kernels runs from cold caches.

The numpy paths in `distance.py`, `exact.py` and `masks.py` compute the same numbers (the tests
check both) and are used when numba is not installed. On a small lesion the fixed costs
dominate (a pair is a few thousand points), so the pair's work is done in few calls.
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
def _merge_runs(values):
    """`values` sorted (a fresh array), by merging its ascending runs pairwise: linear for the
    points of a few boxes, each box's points already in raster order (a natural merge sort;
    numpy's sorts do not look for runs)."""
    m = values.shape[0]
    bounds = [0]
    for j in range(1, m):
        if values[j] < values[j - 1]:
            bounds.append(j)
    bounds.append(m)
    src = values.copy()
    dst = np.empty_like(src)
    while len(bounds) > 2:
        merged = [0]
        for r in range(0, len(bounds) - 1, 2):
            lo, mid = bounds[r], bounds[r + 1]
            hi = bounds[r + 2] if r + 2 < len(bounds) else mid
            i, j, k = lo, mid, lo
            while i < mid and j < hi:
                if src[j] < src[i]:
                    dst[k] = src[j]
                    j += 1
                else:
                    dst[k] = src[i]
                    i += 1
                k += 1
            dst[k : k + mid - i] = src[i:mid]
            k += mid - i
            dst[k : k + hi - j] = src[j:hi]
            merged.append(hi)
        src, dst = dst, src
        bounds = merged
    return src


@njit(cache=True, nogil=True)
def row_table(f, reach, cap):
    """Steps along the run axis to the nearest feature of the same row, for the rows that
    hold features, between each row's first and last feature only.

    `f` is (3, M) points in (a, b, run) axis order. Rows cover the features' box [lo, hi]
    padded by 2 * reach on the two loop axes (so that no offset of a query within reach of
    the box leaves the table): row (a, b) is number (a - lo[0] + 2 * reach[0]) * n_b +
    (b - lo[1] + 2 * reach[1]). Returns (lo, hi, n_b, rows, values, slices): rows[r] is (run
    position of the row's first feature, start in values, length), values the steps (at most
    `cap`) from each run position of that span. Beyond the span the steps are the distance
    to its end (`row_query` computes them), so nothing is stored for them; an empty row reads
    cell 0 (which holds cap) from a first feature that every query is far before. Cost: a few
    passes over the features plus one write per stored cell, never the whole box. slices[a]
    is the box (b from, to; run from, to) of the features in slice a, empty: from > to.
    """
    m = f.shape[1]
    lo = np.empty(3, np.int64)
    hi = np.empty(3, np.int64)
    for k in range(3):
        lo[k] = f[k, 0]
        hi[k] = f[k, 0]
    for j in range(m):
        for k in range(3):
            lo[k] = min(lo[k], f[k, j])
            hi[k] = max(hi[k], f[k, j])
    pad_a, pad_b = 2 * reach[0], 2 * reach[1]
    n_a = hi[0] - lo[0] + 1 + 2 * pad_a
    n_b = hi[1] - lo[1] + 1 + 2 * pad_b
    n_rows = n_a * n_b
    # Points as (row, run position) in one sortable number (the position in the low bits),
    # in raster order unless several boxes' points were joined.
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
    if not in_order:
        code = _merge_runs(code)
    key = code >> bits
    xs = (code & ((1 << bits) - 1)) + lo[2]
    rows = np.empty((n_rows, 3), np.int32)
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
            r = key[begin]
            at = rows[r, 1] - rows[r, 0]  # the cell of run position x is values[at + x]
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
    """Steps from run position x to the nearest feature of table row r, at most cap: the
    stored value inside the row's span; outside it, the distance to the span's nearer end
    (both ends hold features). No branch: a mispredicted one per offset would cost more than
    the whole lookup."""
    cell = x - rows[r, 0]
    length = rows[r, 2]
    stored = values[rows[r, 1] + min(max(cell, 0), length - 1)]
    return min(max(stored, -cell, cell - length + 1), cap)


@njit(cache=True, nogil=True)
def row_query(
    q,
    lo,
    hi,
    reach,
    n_b,
    rows,
    values,
    slices,
    da,
    jumps,
    base,
    terms,
    run,
    certified_sq,
    thresholds,
    run_spacing,
):
    """The outward row search of `distance._search` over a `row_table`.

    `q` is (3, N) points in (a, b, run) order; `lo`, `hi` the features' box; `da[k]` and
    `jumps[k]` offset k's step on axis a and in row number. Returns (best squared mm, open):
    queries beyond `reach` of the box, and queries not closed within the offsets, are open.
    Thick slices: offsets on the query's own slice come first (up to a slice thickness);
    when that slice holds no feature within reach, they are skipped at once, which is what
    the caps of a lesion one slice apart from the other mask's need. The usual case (run
    axis last, exact distances) has a loop of its own: about a quarter faster.
    """
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
    # After offset k, no later offset is nearer than bound[k].
    bound = np.empty(n_offsets)
    bound[:-1] = base[1:]
    bound[-1] = certified_sq
    # With `met` thresholds below a query's best, it is final from offset close_at[met] on:
    # no later offset can bring it below thresholds[met - 1] (met = 0: below all of them).
    close_at = np.zeros(n_thresholds + 1, np.int64)
    for m in range(1, n_thresholds + 1):
        k = 0
        while k < n_offsets and not bound[k] > thresholds[m - 1]:
            k += 1
        close_at[m] = k
    in_plane = 0  # the offsets before the first one off the query's own slice
    while in_plane < n_offsets and da[in_plane] == 0:
        in_plane += 1
    exact_last = n_thresholds == 0 and run == 2
    # The box within reach, and the table's origin, as locals: loads from arrays would be
    # repeated per query (the stores to `best` might alias them, for all the compiler knows).
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
        first = in_plane if away else 0
        current = np.inf
        met = n_thresholds
        # (not range(first, ...): an index that might be negative costs a check per access)
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
def exact_beyond(queries, features, spacing):
    """Exact squared mm for the queries beyond the features' box; returns (out, done).

    The same steps as `exact.exact_squared_mm` (axes with the fewest lines first; beyond the
    box on one side, each line's nearest feature is its extreme one), fused, with one more
    cut: the extremes are sorted from that side inwards, and a query stops at the first one
    whose distance along the axis alone exceeds its best. Rounding never makes a sum of
    non-negative terms smaller than one of them, so the result is the brute force's, bit for
    bit; a far false positive visits a handful of lines instead of all of them.
    """
    n = queries.shape[1]
    out = np.full(n, np.inf)
    done = np.zeros(n, np.bool_)
    lo = np.empty(3, np.int64)
    hi = np.empty(3, np.int64)
    for k in range(3):
        lo[k] = features[k].min()
        hi[k] = features[k].max()
    lines = np.empty(3, np.int64)
    for k in range(3):
        lines[k] = 1
        for other in range(3):
            if other != k:
                lines[k] *= hi[other] - lo[other] + 1
    for axis in np.argsort(lines, kind="mergesort"):
        for high in (False, True):
            side = np.zeros(n, np.bool_)
            count = 0
            for i in range(n):
                beyond = queries[axis, i] > hi[axis] if high else queries[axis, i] < lo[axis]
                if beyond and not done[i]:
                    side[i] = True
                    count += 1
            if count == 0:
                continue
            extremes = line_extremes(features, axis, high, lo, hi)
            order = np.argsort(extremes[axis], kind="mergesort")
            if high:
                order = order[::-1]
            for i in range(n):
                if not side[i]:
                    continue
                best = np.inf
                for j in order:
                    along = (queries[axis, i] - extremes[axis, j]) * spacing[axis]
                    if along * along > best:
                        break
                    d0 = (queries[0, i] - extremes[0, j]) * spacing[0]
                    d1 = (queries[1, i] - extremes[1, j]) * spacing[1]
                    d2 = (queries[2, i] - extremes[2, j]) * spacing[2]
                    d = (d0 * d0 + d1 * d1) + d2 * d2
                    if d < best:
                        best = d
                out[i] = best
                done[i] = True
    return out, done


@njit(cache=True, nogil=True)
def _settle(q, f, best, open_, spacing, brute_pairs):
    """Exact squared mm for the open queries (far false positives, big holes), in place:
    beyond the features' box by `exact_beyond`, the rest by brute force when that is small.
    Returns False when some are left, too many for brute force (the caller has a KD-tree)."""
    todo = np.flatnonzero(open_)
    if todo.size == 0:
        return True
    sub = np.empty((3, todo.size), q.dtype)
    for j in range(todo.size):
        for k in range(3):
            sub[k, j] = q[k, todo[j]]
    found, done = exact_beyond(sub, f, spacing)
    rest = np.flatnonzero(~done)
    if rest.size:
        if rest.size * f.shape[1] > brute_pairs:
            return False
        inside = np.empty((3, rest.size), q.dtype)
        for j in range(rest.size):
            for k in range(3):
                inside[k, j] = sub[k, rest[j]]
        found[rest] = nearest_brute(inside, f, spacing)
    for j in range(todo.size):
        best[todo[j]] = min(best[todo[j]], found[j])
        open_[todo[j]] = False
    return True


@njit(cache=True, nogil=True)
def _directed(q, f, table, plan, thresholds, spacing, brute_pairs):
    """Squared mm (or, with thresholds, enough of it for the classes) from each query of `q`
    to the nearest of `f`, whose `row_table` is `table`: `distance._search` plus the exact
    fallback, for a run axis last. Returns (best, complete)."""
    lo, hi, n_b, rows, values, slices = table
    da, db, base, terms, certified_sq, reach = plan
    best, open_ = row_query(
        q,
        lo,
        hi,
        reach,
        n_b,
        rows,
        values,
        slices,
        da,
        da * n_b + db,
        base,
        terms,
        2,
        certified_sq,
        thresholds,
        spacing[2],
    )
    if thresholds.size and certified_sq > thresholds[-1]:
        open_[:] = False  # every open query is beyond the largest tolerance
    return best, _settle(q, f, best, open_, spacing, brute_pairs)


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
def pair_search(points, tables, exact_plan, class_plan, thresholds, spacing, brute_pairs):
    """Every surface distance of a pair, in one call: the four searches of
    `surface.surface_distances` (reference and test voxel surfaces, exact, each against the
    other's; their surfels, classes against the thresholds) with their exact fallbacks.

    `points` is (reference voxels, test voxels, reference surfels, test surfels), `tables`
    their `row_table`s. Returns (reference-to-test mm, test-to-reference mm, reference
    surfel classes, test surfel classes, complete): one call instead of a dozen, whose
    bookkeeping cost more than the searches on small lesions.
    """
    none = np.zeros(0)
    ref_vox, test_vox, ref_surf, test_surf = points
    ref_vox_t, test_vox_t, ref_surf_t, test_surf_t = tables
    to_test, ok_a = _directed(ref_vox, test_vox, test_vox_t, exact_plan, none, spacing, brute_pairs)
    to_ref, ok_b = _directed(test_vox, ref_vox, ref_vox_t, exact_plan, none, spacing, brute_pairs)
    ref_best, ok_c = _directed(
        ref_surf, test_surf, test_surf_t, class_plan, thresholds, spacing, brute_pairs
    )
    test_best, ok_d = _directed(
        test_surf, ref_surf, ref_surf_t, class_plan, thresholds, spacing, brute_pairs
    )
    return (
        np.sqrt(to_test),
        np.sqrt(to_ref),
        _classes(ref_best, thresholds),
        _classes(test_best, thresholds),
        ok_a and ok_b and ok_c and ok_d,
    )


@njit(cache=True, nogil=True, inline="always")
def _row_ends(words, mask, z, y, per_word):
    """First and last non-zero x of an occupied row: a word at a time, then a byte."""
    nw = words.shape[2]
    a = 0
    while words[z, y, a] == 0:
        a += 1
    b = nw - 1
    while words[z, y, b] == 0:
        b -= 1
    a *= per_word
    while mask[z, y, a] == 0:
        a += 1
    b = b * per_word + per_word - 1
    while mask[z, y, b] == 0:
        b -= 1
    return a, b


@njit(cache=True, nogil=True, inline="always")
def _seen(along_z, along_y, along_x, mask, z, y, a, b):
    """Record an occupied row (its voxels from a to b) in the mask's profiles."""
    along_z[z] = 1
    along_y[y] = 1
    for x in range(a, b + 1):
        along_x[x] |= mask[z, y, x] != 0


@njit(cache=True, nogil=True)
def _block_hit(words, z, y, rows, ny):
    """OR of the words of `rows` rows from row (z, y) on (z advancing past the last y)."""
    hit = words[z, y, 0] ^ words[z, y, 0]  # a zero of the words' type
    for _ in range(rows):
        for w in range(words.shape[2]):
            hit |= words[z, y, w]
        y += 1
        if y == ny:
            y = 0
            z += 1
    return hit


@njit(cache=True, nogil=True)
def _block_rows(words, mask, z_p, y_p, x_p, z, y, rows, ny, per_word):
    """Record the occupied rows among `rows` rows from row (z, y) in the mask's profiles."""
    for _ in range(rows):
        hit = words[z, y, 0]
        for w in range(1, words.shape[2]):
            hit |= words[z, y, w]
        if hit:
            a, b = _row_ends(words, mask, z, y, per_word)
            _seen(z_p, y_p, x_p, mask, z, y, a, b)
        y += 1
        if y == ny:
            y = 0
            z += 1


# Rows per block of the pass: a block is skipped with one test when all its words are zero.
PASS_BLOCK_ROWS = 4


@njit(cache=True, nogil=True)
def occupied_profiles(words_a, mask_a, words_b, mask_b):
    """Which planes along z, y and x hold a voxel, for two one-byte masks of one shape, from
    one pass over both: (z_a, y_a, x_a, z_b, y_b, x_b), uint8.

    The only pass that touches every voxel: `words_*` are the masks viewed as uint64 where
    their rows allow (eight voxels per OR; the ends of an occupied row found a word at a
    time), else the masks themselves. Blocks of `PASS_BLOCK_ROWS` rows are ORed whole, and
    only an occupied block is read again row by row, an occupied row voxel by voxel between
    its ends. Four memory streams in flight (the first and the second half of the rows of
    each mask, side by side): when the masks come from memory rather than cache (right
    after a peer's run that filled the cache), a single core reads them about a quarter
    faster than with two streams, and faster than one mask after the other.
    numpy needs a reduction per axis and mask, each a pass over the volume or a projection.
    """
    nz, ny, nw = words_a.shape
    nx = mask_a.shape[2]
    per_word = nx // nw
    profiles = np.zeros((2, nz + ny + nx), np.uint8)
    z_a, y_a, x_a = profiles[0, :nz], profiles[0, nz : nz + ny], profiles[0, nz + ny :]
    z_b, y_b, x_b = profiles[1, :nz], profiles[1, nz : nz + ny], profiles[1, nz + ny :]
    block = PASS_BLOCK_ROWS
    n_rows = nz * ny
    n_blocks = (n_rows + block - 1) // block
    half = (n_blocks + 1) // 2
    for i in range(half):
        j = i + half
        r0, r1 = i * block, j * block
        rows0 = min(block, n_rows - r0)
        rows1 = min(block, n_rows - r1) if j < n_blocks else 0
        z0, y0 = r0 // ny, r0 % ny
        z1, y1 = (r1 // ny, r1 % ny) if rows1 else (z0, y0)
        # The four streams' ORs in one loop, rows of a whole block at a time.
        hit0a = words_a[z0, y0, 0] ^ words_a[z0, y0, 0]  # a zero of the words' type
        hit0b = hit0a
        hit1a = hit0a
        hit1b = hit0a
        if rows0 == block and rows1 == block:
            za, ya, zb, yb = z0, y0, z1, y1
            for _ in range(block):
                for w in range(nw):
                    hit0a |= words_a[za, ya, w]
                    hit0b |= words_b[za, ya, w]
                    hit1a |= words_a[zb, yb, w]
                    hit1b |= words_b[zb, yb, w]
                ya += 1
                if ya == ny:
                    ya = 0
                    za += 1
                yb += 1
                if yb == ny:
                    yb = 0
                    zb += 1
        else:  # the last blocks
            hit0a = _block_hit(words_a, z0, y0, rows0, ny)
            hit0b = _block_hit(words_b, z0, y0, rows0, ny)
            hit1a = _block_hit(words_a, z1, y1, rows1, ny)
            hit1b = _block_hit(words_b, z1, y1, rows1, ny)
        if hit0a:
            _block_rows(words_a, mask_a, z_a, y_a, x_a, z0, y0, rows0, ny, per_word)
        if hit0b:
            _block_rows(words_b, mask_b, z_b, y_b, x_b, z0, y0, rows0, ny, per_word)
        if hit1a:
            _block_rows(words_a, mask_a, z_a, y_a, x_a, z1, y1, rows1, ny, per_word)
        if hit1b:
            _block_rows(words_b, mask_b, z_b, y_b, x_b, z1, y1, rows1, ny, per_word)
    return z_a, y_a, x_a, z_b, y_b, x_b


@njit(cache=True, nogil=True)
def _gap_runs(flags, min_gap):
    """Inclusive (start, end) runs of non-zero flags, joined across gaps of at most min_gap."""
    out = np.empty((flags.shape[0], 2), np.int64)
    n = 0
    for i in range(flags.shape[0]):
        if flags[i]:
            if n and i - out[n - 1, 1] <= min_gap:
                out[n - 1, 1] = i
            else:
                out[n, 0] = i
                out[n, 1] = i
                n += 1
    return out[:n]


@njit(cache=True, nogil=True)
def box_runs(region, min_gap):
    """The runs of occupied planes of a one-byte (z, y, x) region along each axis, joined
    across gaps of at most min_gap planes (`masks._runs`), from one pass over the region
    (numpy needs a reduction per axis, each over the region or its projection)."""
    nz, ny, nx = region.shape
    along_z = np.zeros(nz, np.uint8)
    along_y = np.zeros(ny, np.uint8)
    along_x = np.zeros(nx, np.uint8)
    for z in range(nz):
        for y in range(ny):
            hit = np.uint8(0)
            for x in range(nx):
                v = region[z, y, x]
                along_x[x] |= v
                hit |= v
            along_z[z] |= hit
            along_y[y] |= hit
    return _gap_runs(along_z, min_gap), _gap_runs(along_y, min_gap), _gap_runs(along_x, min_gap)


@njit(cache=True, nogil=True)
def _grown(rows, n):
    """`rows` with room for at least n + 1 rows (doubled when full)."""
    if n < rows.shape[0]:
        return rows
    bigger = np.empty((2 * rows.shape[0], rows.shape[1]), rows.dtype)
    bigger[:n] = rows[:n]
    return bigger


@njit(cache=True, nogil=True)
def split_boxes(mask, along_z, along_y, along_x, min_gap, max_parts):
    """`masks._boxes` compiled: tight boxes of the one-byte mask's voxels, cut at empty gaps
    wider than min_gap planes (along z first, then y, then x), at most max_parts - 1 cuts.
    The whole mask's profiles (`occupied_profiles`) give the first cut; each box cut out is
    read for its own. Depth first with an explicit stack, children pushed last to first, so
    the boxes (P, 6: lo then hi) come in the recursion's order."""
    stack = np.empty((16, 6), np.int64)
    stack[0, :3] = 0
    stack[0, 3] = along_z.shape[0] - 1
    stack[0, 4] = along_y.shape[0] - 1
    stack[0, 5] = along_x.shape[0] - 1
    top = 1
    out = np.empty((4, 6), np.int64)
    n = 0
    budget = max_parts - 1
    first = True
    while top:
        top -= 1
        box = stack[top].copy()
        gap = min_gap if budget > 0 else 1 << 30
        region = mask[box[0] : box[3] + 1, box[1] : box[4] + 1, box[2] : box[5] + 1]
        whole = first  # the whole volume: its profiles are known, all voxels in its z-runs
        first = False
        if whole:
            z_runs = _gap_runs(along_z, gap)
            y_runs = _gap_runs(along_y, gap)
            x_runs = _gap_runs(along_x, gap)
        else:
            z_runs, y_runs, x_runs = box_runs(region, gap)
        if z_runs.shape[0] == 0:
            continue
        if z_runs.shape[0] == 1:
            start, end = z_runs[0, 0], z_runs[0, 1]
            if not whole and end - start + 1 < region.shape[0]:  # in-plane runs of those only
                _, y_runs, x_runs = box_runs(region[start : end + 1], gap)
            box[3] = box[0] + end
            box[0] += start
            axis = 1 if y_runs.shape[0] > 1 else 2
            runs = y_runs if y_runs.shape[0] > 1 else x_runs
        else:
            axis = 0
            runs = z_runs
        # Nothing lies beyond the outer runs in-plane: the boxes cut out need not read it.
        y_off, x_off = box[1], box[2]
        box[1], box[4] = y_off + y_runs[0, 0], y_off + y_runs[-1, 1]
        box[2], box[5] = x_off + x_runs[0, 0], x_off + x_runs[-1, 1]
        if runs.shape[0] == 1:  # one run on every axis: a final box
            out = _grown(out, n)
            out[n] = box
            n += 1
            continue
        budget -= runs.shape[0] - 1
        origin = box[axis] if axis == 0 else (y_off if axis == 1 else x_off)
        for j in range(runs.shape[0] - 1, -1, -1):
            stack = _grown(stack, top)
            stack[top] = box
            stack[top, axis] = origin + runs[j, 0]
            stack[top, axis + 3] = origin + runs[j, 1]
            top += 1
    return out[:n]


@njit(cache=True, nogil=True)
def mask_surfaces(mask, boxes, area_of_code):
    """Voxel surface, surfels and surfel areas of a one-byte mask inside its boxes, in global
    (z, y, x) indices, and its voxel count: the per-box work of `masks.prepare_mask` in one
    call (one pass over each box).

    `boxes` is (P, 6): inclusive lo (z, y, x) then hi. Each box is copied into a zero-padded
    crop (the boxes are cut at empty gaps, so outside a box the mask is empty near it).
    Voxel i of the crop is padded[i + 1]; corner j of the padded grid lies between padded
    voxels j and j + 1, i.e. between mask voxels lo + j - 1 and lo + j: its index is lo + j.
    A corner's code is (column(x) << 1) | column(x + 1), where a column packs its 2x2 (z, y)
    voxels in bits 6, 4, 2, 0: DeepMind's bit order (see `masks.neighbour_codes`).
    """
    n_boxes = boxes.shape[0]
    cells = 0
    corner_cells = 0
    for p in range(n_boxes):
        n0 = boxes[p, 3] - boxes[p, 0] + 1
        n1 = boxes[p, 4] - boxes[p, 1] + 1
        n2 = boxes[p, 5] - boxes[p, 2] + 1
        cells += n0 * n1 * n2
        corner_cells += (n0 + 1) * (n1 + 1) * (n2 + 1)
    voxels = np.empty((3, cells), np.int32)
    corners = np.empty((3, corner_cells), np.int32)
    areas = np.empty(corner_cells)
    v = 0
    c = 0
    count = 0
    for p in range(n_boxes):
        lo0, lo1, lo2 = boxes[p, 0], boxes[p, 1], boxes[p, 2]
        nz = boxes[p, 3] - lo0 + 3
        ny = boxes[p, 4] - lo1 + 3
        nx = boxes[p, 5] - lo2 + 3
        padded = np.zeros((nz, ny, nx), np.uint8)
        for z in range(nz - 2):
            for y in range(ny - 2):
                for x in range(nx - 2):
                    on = np.uint8(mask[lo0 + z, lo1 + y, lo2 + x] != 0)
                    padded[z + 1, y + 1, x + 1] = on
                    count += on
        for z in range(nz - 1):
            for y in range(ny - 1):
                right = _column(padded, z, y, 0)
                for x in range(nx - 1):
                    left = right
                    right = _column(padded, z, y, x + 1)
                    code = (left << 1) | right
                    if code != 0 and code != 255:
                        corners[0, c] = lo0 + z
                        corners[1, c] = lo1 + y
                        corners[2, c] = lo2 + x
                        areas[c] = area_of_code[code]
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
                        voxels[0, v] = lo0 + z - 1
                        voxels[1, v] = lo1 + y - 1
                        voxels[2, v] = lo2 + x - 1
                        v += 1
    return voxels[:, :v].copy(), corners[:, :c].copy(), areas[:c].copy(), count


@njit(cache=True, inline="always")
def _column(p, z, y, x):
    return (p[z, y, x] << 6) | (p[z, y + 1, x] << 4) | (p[z + 1, y, x] << 2) | p[z + 1, y + 1, x]


@njit(cache=True, nogil=True)
def overlap_in_boxes(mask_a, boxes_a, mask_b, boxes_b):
    """Voxels in both one-byte masks, counted where their boxes (P, 6) meet
    (`masks.overlap_voxels`, without a crop or a temporary per box pair)."""
    total = 0
    for p in range(boxes_a.shape[0]):
        for q in range(boxes_b.shape[0]):
            z0 = max(boxes_a[p, 0], boxes_b[q, 0])
            y0 = max(boxes_a[p, 1], boxes_b[q, 1])
            x0 = max(boxes_a[p, 2], boxes_b[q, 2])
            z1 = min(boxes_a[p, 3], boxes_b[q, 3])
            y1 = min(boxes_a[p, 4], boxes_b[q, 4])
            x1 = min(boxes_a[p, 5], boxes_b[q, 5])
            for z in range(z0, z1 + 1):
                for y in range(y0, y1 + 1):
                    for x in range(x0, x1 + 1):
                        total += (mask_a[z, y, x] != 0) & (mask_b[z, y, x] != 0)
    return total


@njit(cache=True, nogil=True)
def percentile(values, q):
    """`compat.percentile` (numpy's linear-interpolation percentile) bit for bit: the same
    index, weight and arithmetic on the same two order statistics."""
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
def _block_sum(values, start, n):
    """numpy's pairwise sum of a block of at most 128 values: below 8 in plain order, else
    8 interleaved partial sums, combined pairwise, then the rest in plain order."""
    if n < 8:
        total = 0.0
        for i in range(n):
            total += values[start + i]
        return total
    r0, r1, r2, r3 = values[start], values[start + 1], values[start + 2], values[start + 3]
    r4, r5, r6, r7 = values[start + 4], values[start + 5], values[start + 6], values[start + 7]
    i = 8
    while i < n - n % 8:
        at = start + i
        r0 += values[at]
        r1 += values[at + 1]
        r2 += values[at + 2]
        r3 += values[at + 3]
        r4 += values[at + 4]
        r5 += values[at + 5]
        r6 += values[at + 6]
        r7 += values[at + 7]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        total += values[start + i]
        i += 1
    return total


@njit(cache=True, nogil=True)
def pairwise_sum(values, start, n):
    """`values[start:start + n].sum()` bit for bit: numpy's pairwise summation of float64
    (runs longer than 128 halved at a multiple of 8, each half summed alike, the two sums
    added; blocks by `_block_sum`), hand-written because numba's `sum` adds in plain order.
    Without recursion (numba's cache reloads a recursive function badly): the halving tree
    walked depth first with an explicit stack, left before right. The tests compare it with
    numpy's on many lengths."""
    if n <= 128:
        return _block_sum(values, start, n)
    # Frames (start, length, stage): stage 0 sums the left half next, 1 the right, 2 adds.
    frames = np.empty((64, 3), np.int64)
    sums = np.empty(64)
    frames[0, 0], frames[0, 1], frames[0, 2] = start, n, 0
    top, depth = 1, 0
    while top:
        at, length, stage = frames[top - 1, 0], frames[top - 1, 1], frames[top - 1, 2]
        half = length // 2
        half -= half % 8
        if stage == 2:
            top -= 1
            depth -= 1
            sums[depth - 1] = sums[depth - 1] + sums[depth]
            continue
        frames[top - 1, 2] = stage + 1
        child_at, child_n = (at, half) if stage == 0 else (at + half, length - half)
        if child_n <= 128:
            sums[depth] = _block_sum(values, child_at, child_n)
            depth += 1
        else:
            frames[top, 0], frames[top, 1], frames[top, 2] = child_at, child_n, 0
            top += 1
    return sums[0]


@njit(cache=True, nogil=True)
def surface_dices(ref_classes, ref_areas, test_classes, test_areas, n_tolerances):
    """`SurfaceDistances.surface_dices` bit for bit: area per class summed in point order
    (as `np.bincount` does), accumulated in class order (as `np.cumsum`), both surfaces
    added, divided by the total."""
    ref = np.zeros(n_tolerances + 1)
    test = np.zeros(n_tolerances + 1)
    for i in range(ref_classes.shape[0]):
        ref[ref_classes[i]] += ref_areas[i]
    for i in range(test_classes.shape[0]):
        test[test_classes[i]] += test_areas[i]
    for k in range(1, n_tolerances + 1):
        ref[k] = ref[k - 1] + ref[k]
        test[k] = test[k - 1] + test[k]
    within = ref + test
    return within[:-1] / within[-1]


@njit(cache=True, nogil=True)
def _within_reach(features, queries, reach):
    """The features (3, M) within `reach` (grid steps per axis) of the queries' box, as the
    numpy `distance._search` keeps them: any other is at least the search limit away from
    every query, so it can never be the nearest feature of a query the search closes (the
    open ones are settled against all features). All of them when none or all would go."""
    lo = np.empty(3, np.int64)
    hi = np.empty(3, np.int64)
    for k in range(3):
        lo[k] = queries[k].min() - reach[k]
        hi[k] = queries[k].max() + reach[k]
    m = features.shape[1]
    keep = np.empty(m, np.bool_)
    kept = 0
    for j in range(m):
        inside = True
        for k in range(3):
            if features[k, j] < lo[k] or features[k, j] > hi[k]:
                inside = False
        keep[j] = inside
        kept += inside
    if kept == m or kept == 0:
        return features
    out = np.empty((3, kept), features.dtype)
    c = 0
    for j in range(m):
        if keep[j]:
            for k in range(3):
                out[k, c] = features[k, j]
            c += 1
    return out


@njit(cache=True, nogil=True)
def score_pair_once(
    words_a,
    mask_a,
    words_b,
    mask_b,
    area_of_code,
    min_gap,
    max_parts,
    voxel_ml,
    small_ml,
    exact_plan,
    class_plan,
    thresholds,
    spacing,
    brute_pairs,
):
    """Everything `pair.score_pair` needs from two one-byte masks, in one call: the pass over
    both (`occupied_profiles`), each mask's boxes and surfaces (`split_boxes`,
    `mask_surfaces`), the overlap, and, when both masks are above `small_ml` (else the
    distance metrics are undefined), the four surface searches (`row_table`, `pair_search`)
    and their reducers (`percentile` at 95 per direction and pooled, `surface_dices`).

    Why one call: after the pass over 20 MB of masks the caches hold the masks, and every
    Python or numpy step after it ran from cold caches (about 0.1 ms per small numpy call
    at 2 ml); the compiled steps touch only the lesion's few kilobytes.

    Returns (voxels a, voxels b, overlap, searched, (HD95 a-to-b, HD95 b-to-a, HD95 pooled),
    (ASD pooled, ASD b-to-a: `compat.asd_mm` off and use), surface Dice per tolerance
    ascending); `searched` is False where the search was skipped or left queries for a
    KD-tree (the caller falls back).
    """
    z_a, y_a, x_a, z_b, y_b, x_b = occupied_profiles(words_a, mask_a, words_b, mask_b)
    boxes_a = split_boxes(mask_a, z_a, y_a, x_a, min_gap, max_parts)
    boxes_b = split_boxes(mask_b, z_b, y_b, x_b, min_gap, max_parts)
    vox_a, surf_a, areas_a, n_a = mask_surfaces(mask_a, boxes_a, area_of_code)
    vox_b, surf_b, areas_b, n_b = mask_surfaces(mask_b, boxes_b, area_of_code)
    tp = overlap_in_boxes(mask_a, boxes_a, mask_b, boxes_b)
    n_tolerances = thresholds.shape[0]
    if not (n_a > 0 and n_b > 0 and n_a * voxel_ml > small_ml and n_b * voxel_ml > small_ml):
        return n_a, n_b, tp, False, np.zeros(3), np.zeros(2), np.zeros(n_tolerances)
    exact_reach, class_reach = exact_plan[5], class_plan[5]
    exact_cap, class_cap = exact_reach[2] + 1, class_reach[2] + 1
    # Each table only of the features within reach of the other mask's points (a far false
    # positive of one mask is left out of the table the other's points search): no mask is
    # paired again here, so the tables need not serve other pairs.
    tables = (
        row_table(_within_reach(vox_a, vox_b, exact_reach), exact_reach, exact_cap),
        row_table(_within_reach(vox_b, vox_a, exact_reach), exact_reach, exact_cap),
        row_table(_within_reach(surf_a, surf_b, class_reach), class_reach, class_cap),
        row_table(_within_reach(surf_b, surf_a, class_reach), class_reach, class_cap),
    )
    to_b, to_a, classes_a, classes_b, complete = pair_search(
        (vox_a, vox_b, surf_a, surf_b),
        tables,
        exact_plan,
        class_plan,
        thresholds,
        spacing,
        brute_pairs,
    )
    if not complete:
        return n_a, n_b, tp, False, np.zeros(3), np.zeros(2), np.zeros(n_tolerances)
    hd95 = np.empty(3)
    hd95[0] = percentile(to_b, 95.0)
    hd95[1] = percentile(to_a, 95.0)
    hd95[2] = percentile(np.concatenate((to_a, to_b)), 95.0)
    sum_b, sum_a = pairwise_sum(to_b, 0, to_b.shape[0]), pairwise_sum(to_a, 0, to_a.shape[0])
    asd = np.empty(2)
    asd[0] = (sum_b + sum_a) / (to_b.shape[0] + to_a.shape[0])
    asd[1] = sum_a / to_a.shape[0]
    dices = surface_dices(classes_a, areas_a, classes_b, areas_b, n_tolerances)
    return n_a, n_b, tp, True, hd95, asd, dices
