"""Compiled (numba) lesion work: 26-connected components inside a mask's boxes, and their
one-to-one matching by IoU between two masks, both on runs (a row's consecutive voxels).

A lesion's runs are far fewer than its voxels (a 60 ml lesion at 0.45 x 0.45 x 5 mm: about
1,000 runs for 59,000 voxels), so both steps cost per run:

- `label_runs`: the runs of one box, joined into components by union-find, while
  `_kernels.mask_surfaces` holds the box's zero-padded crop (no second copy of the box, no
  label volume, no call per box into another library). Two runs of neighbouring rows touch
  under 26-connectivity when their x spans overlap or meet at a corner (one voxel apart).
- `match_in_boxes`: which lesions of two masks match at IoU > a threshold, from the runs'
  overlaps where their boxes meet. A lesion's partner above IoU 0.5 holds more than half of
  it (shared > (|r| + |t|) / 3 and shared <= |t| give shared > |r| / 2), so a majority vote
  per reference lesion (Boyer-Moore, weighted by overlap length) names the only candidate, and
  a second pass counts what it shares: no table of every overlapping pair.

A mask's lesions, for all its boxes one after the other: `runs` (R, 3) int32 (first x, last
x, lesion label 1..n; global x), `rows` (rows + 1) int64, the runs of a box's row k (z, then
y, in raster order) being runs[rows[base + k] : rows[base + k + 1]], base = the rows of the
boxes before it.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _root(parent, i):
    """The root of i's set, halving the path on the way."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@njit(cache=True, nogil=True)
def _find_runs(padded, runs, rows, run0, row0):
    """The runs of each row of a zero-padded crop (x in the crop's unpadded coordinates),
    written from runs[run0] and rows[row0] on; returns the end of the runs."""
    nz, ny, nx = padded.shape
    n, k = run0, row0
    for z in range(1, nz - 1):
        for y in range(1, ny - 1):
            rows[k] = n
            k += 1
            x = 1
            while x < nx - 1:
                if padded[z, y, x]:
                    runs[n, 0] = x - 1
                    while padded[z, y, x + 1]:  # the padding ends every run
                        x += 1
                    runs[n, 1] = x - 1
                    n += 1
                x += 1
    return n


@njit(cache=True, nogil=True)
def _join_rows(runs, parent, i, i_end, j, j_end, run0):
    """Join each run of one row to the touching runs of a neighbouring row (both in x order):
    one merge of the two lists."""
    while i < i_end and j < j_end:
        if runs[j, 1] < runs[i, 0] - 1:
            j += 1
        elif runs[i, 1] < runs[j, 0] - 1:
            i += 1
        else:
            a, b = _root(parent, i - run0), _root(parent, j - run0)
            parent[max(a, b)] = min(a, b)
            if runs[i, 1] < runs[j, 1]:
                i += 1
            else:
                j += 1


@njit(cache=True, nogil=True)
def label_runs(padded, runs, rows, run0, row0, lo, first):
    """The 26-connected lesions of a zero-padded crop of the box at `lo` (z, y, x): its runs
    written from runs[run0] and rows[row0] on (see the module's docstring), labelled from
    `first` in order of appearance. Returns (end of the runs, voxels per lesion)."""
    end = _find_runs(padded, runs, rows, run0, row0)
    n_y = padded.shape[1] - 2
    n_rows = (padded.shape[0] - 2) * n_y
    rows[row0 + n_rows] = end
    parent = np.arange(end - run0)
    for k in range(n_rows):  # the row before in-plane, then the three of the slice before
        i, i_end = rows[row0 + k], rows[row0 + k + 1]
        if i == i_end:
            continue
        y = k % n_y
        if y > 0:
            _join_rows(runs, parent, i, i_end, rows[row0 + k - 1], rows[row0 + k], run0)
        if k >= n_y:
            for dy in range(max(-1, -y), min(1, n_y - 1 - y) + 1):
                other = row0 + k - n_y + dy
                _join_rows(runs, parent, i, i_end, rows[other], rows[other + 1], run0)
    final = np.zeros(parent.shape[0], np.int64)
    sizes = np.zeros(parent.shape[0], np.int64)
    n = 0
    for r in range(parent.shape[0]):  # a root precedes its set's other runs
        root = _root(parent, r)
        if root == r:
            final[r] = n
            n += 1
        else:
            final[r] = final[root]
        sizes[final[r]] += runs[run0 + r, 1] - runs[run0 + r, 0] + 1
        runs[run0 + r, 0] += lo[2]
        runs[run0 + r, 1] += lo[2]
        runs[run0 + r, 2] = first + final[r]
    return end, sizes[:n]


@njit(cache=True, nogil=True)
def _row_bases(boxes):
    """Where each box's rows begin in a mask's `rows`."""
    bases = np.zeros(boxes.shape[0], np.int64)
    for p in range(1, boxes.shape[0]):
        q = p - 1
        bases[p] = bases[q] + (boxes[q, 3] - boxes[q, 0] + 1) * (boxes[q, 4] - boxes[q, 1] + 1)
    return bases


@njit(cache=True, nogil=True)
def _tally(lesions_a, lesions_b, candidate, votes, shared, voting):
    """One pass over the overlaps of A's and B's runs where their boxes meet. Voting: each
    reference lesion's majority candidate (Boyer-Moore, weighted by overlap length); else
    the voxels it shares with that candidate."""
    boxes_a, runs_a, rows_a = lesions_a
    boxes_b, runs_b, rows_b = lesions_b
    bases_a, bases_b = _row_bases(boxes_a), _row_bases(boxes_b)
    for p in range(boxes_a.shape[0]):
        for q in range(boxes_b.shape[0]):
            lo = np.maximum(boxes_a[p, :3], boxes_b[q, :3])
            hi = np.minimum(boxes_a[p, 3:], boxes_b[q, 3:])
            if (hi < lo).any():
                continue
            ny_a = boxes_a[p, 4] - boxes_a[p, 1] + 1
            ny_b = boxes_b[q, 4] - boxes_b[q, 1] + 1
            for z in range(lo[0], hi[0] + 1):
                for y in range(lo[1], hi[1] + 1):
                    k = bases_a[p] + (z - boxes_a[p, 0]) * ny_a + y - boxes_a[p, 1]
                    i, i_end = rows_a[k], rows_a[k + 1]
                    k = bases_b[q] + (z - boxes_b[q, 0]) * ny_b + y - boxes_b[q, 1]
                    j, j_end = rows_b[k], rows_b[k + 1]
                    while i < i_end and j < j_end:
                        both = min(runs_a[i, 1], runs_b[j, 1]) - max(runs_a[i, 0], runs_b[j, 0])
                        if both >= 0:
                            r, t = runs_a[i, 2], runs_b[j, 2]
                            if not voting:
                                shared[r] += both + 1 if t == candidate[r] else 0
                            elif both + 1 <= votes[r] and t != candidate[r]:
                                votes[r] -= both + 1
                            elif t == candidate[r]:
                                votes[r] += both + 1
                            else:
                                candidate[r], votes[r] = t, both + 1 - votes[r]
                        if runs_a[i, 1] < runs_b[j, 1]:
                            i += 1
                        else:
                            j += 1


@njit(cache=True, nogil=True)
def match_in_boxes(lesions_a, voxels_a, lesions_b, voxels_b, iou_above):
    """Which lesions of A and of B (bool per lesion, labels 1..n in order) have a partner with
    IoU > `iou_above` (at least 0.5). `lesions_*` are (boxes, runs, rows) of `label_runs`,
    `voxels_*` each lesion's voxel count."""
    n_a = voxels_a.shape[0]
    candidate = np.zeros(n_a + 1, np.int64)
    votes = np.zeros(n_a + 1, np.int64)
    shared = np.zeros(n_a + 1, np.int64)
    _tally(lesions_a, lesions_b, candidate, votes, shared, True)
    _tally(lesions_a, lesions_b, candidate, votes, shared, False)
    ref_matched = np.zeros(n_a, np.bool_)
    test_matched = np.zeros(voxels_b.shape[0], np.bool_)
    for r in range(1, n_a + 1):
        if shared[r]:
            t = candidate[r]
            if shared[r] / (voxels_a[r - 1] + voxels_b[t - 1] - shared[r]) > iou_above:
                ref_matched[r - 1] = True
                test_matched[t - 1] = True
    return ref_matched, test_matched
