"""Compiled (numba) work on whole masks: the one pass over the volume, boxes, surfaces, overlap.

- `occupied_profiles`: the only pass over the whole volume, both masks of a pair side by side,
  eight voxels at a time (numpy needs a reduction per axis, each a pass).
- `split_boxes`, `mask_surfaces`: each mask cut into tight boxes at wide empty gaps, then one
  pass per box for the voxel surface, the surfels and their areas, and its lesions labelled.
- `prepare_two`: all of the above for two masks in one call; `overlap_in_boxes`: their TP.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bench.evaluate._components import label_runs


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
    across gaps of at most min_gap planes from one pass over the region
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
    """Tight boxes of the one-byte mask's voxels, cut at empty gaps
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
    (z, y, x) indices, its voxel count, and its lesions (runs, rows and voxels per lesion:
    `_components.label_runs`): the per-box work of `masks.prepare_mask` in one call (one
    pass over each box, and the lesions' runs read from the same padded crop).

    `boxes` is (P, 6): inclusive lo (z, y, x) then hi. Each box is copied into a zero-padded
    crop (the boxes are cut at empty gaps, so outside a box the mask is empty near it).
    Voxel i of the crop is padded[i + 1]; corner j of the padded grid lies between padded
    voxels j and j + 1, i.e. between mask voxels lo + j - 1 and lo + j: its index is lo + j.
    A corner's code is (column(x) << 1) | column(x + 1), where a column packs its 2x2 (z, y)
    voxels in bits 6, 4, 2, 0: DeepMind's bit order ([[[128, 64], [32, 16]], [[8, 4], [2, 1]]]).
    """
    n_boxes = boxes.shape[0]
    cells = 0
    corner_cells = 0
    n_rows = 0
    most_runs = 0  # at most one per two voxels of a row
    for p in range(n_boxes):
        n0 = boxes[p, 3] - boxes[p, 0] + 1
        n1 = boxes[p, 4] - boxes[p, 1] + 1
        n2 = boxes[p, 5] - boxes[p, 2] + 1
        cells += n0 * n1 * n2
        corner_cells += (n0 + 1) * (n1 + 1) * (n2 + 1)
        n_rows += n0 * n1
        most_runs += n0 * n1 * ((n2 + 1) // 2)
    voxels = np.empty((3, cells), np.int32)
    corners = np.empty((3, corner_cells), np.int32)
    areas = np.empty(corner_cells)
    runs = np.empty((most_runs, 3), np.int32)
    rows = np.empty(n_rows + 1, np.int64)
    rows[0] = 0
    lesion_voxels = np.empty(most_runs, np.int64)
    v = 0
    c = 0
    count = 0
    n_runs = 0
    row = 0
    lesions = 0
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
        n_runs, sizes = label_runs(padded, runs, rows, n_runs, row, boxes[p], lesions + 1)
        lesion_voxels[lesions : lesions + sizes.shape[0]] = sizes
        lesions += sizes.shape[0]
        row += (nz - 2) * (ny - 2)
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
    return (
        voxels[:, :v].copy(),
        corners[:, :c].copy(),
        areas[:c].copy(),
        count,
        runs[:n_runs].copy(),
        rows,
        lesion_voxels[:lesions].copy(),
    )


@njit(cache=True, inline="always")
def _column(p, z, y, x):
    return (p[z, y, x] << 6) | (p[z, y + 1, x] << 4) | (p[z + 1, y, x] << 2) | p[z + 1, y + 1, x]


@njit(cache=True, nogil=True)
def overlap_in_boxes(mask_a, boxes_a, mask_b, boxes_b):
    """Voxels in both one-byte masks, counted where their boxes (P, 6) meet
    (without a crop or a temporary per box pair)."""
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
def prepare_two(words_a, mask_a, words_b, mask_b, area_of_code, min_gap, max_parts):
    """Boxes, voxel surface, surfels, surfel areas, voxel count and lesions of two one-byte
    masks of one shape (`masks.prepare_masks`), from one pass over both and one pass per box."""
    z_a, y_a, x_a, z_b, y_b, x_b = occupied_profiles(words_a, mask_a, words_b, mask_b)
    boxes_a = split_boxes(mask_a, z_a, y_a, x_a, min_gap, max_parts)
    boxes_b = split_boxes(mask_b, z_b, y_b, x_b, min_gap, max_parts)
    found_a = mask_surfaces(mask_a, boxes_a, area_of_code)
    found_b = mask_surfaces(mask_b, boxes_b, area_of_code)
    return (boxes_a,) + found_a, (boxes_b,) + found_b
