"""Mask preparation: boxes, surface voxels and surfels, against scipy and DeepMind's definitions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from bench.evaluate import _kernels
from bench.evaluate import masks as masks_module
from bench.evaluate.masks import neighbour_codes, overlap_voxels, prepare_mask, prepare_masks

DEEPMIND_KERNEL = np.array([[[128, 64], [32, 16]], [[8, 4], [2, 1]]])


def random_mask(rng: np.random.Generator, shape=(7, 9, 11), fill=0.3) -> np.ndarray:
    return rng.random(shape) < fill


def test_neighbour_codes_match_deepmind_correlation():
    rng = np.random.default_rng(0)
    mask = random_mask(rng)
    # DeepMind: crop padded by one voxel at the high end, correlate with cval 0.
    crop = np.zeros(np.array(mask.shape) + 1, np.uint8)
    crop[:-1, :-1, :-1] = mask
    expected = ndimage.correlate(crop, DEEPMIND_KERNEL, mode="constant", cval=0)
    padded = np.pad(mask.astype(np.uint8), 1)
    assert np.array_equal(neighbour_codes(padded), expected)


def test_voxel_surface_is_mask_minus_face_erosion(backend):
    rng = np.random.default_rng(1)
    mask = ndimage.binary_dilation(random_mask(rng, (12, 14, 10), 0.05), iterations=2)
    mask[0, 3:6, 3:6] = True  # touches the volume border: counts as surface (border_value=0)
    prepared = prepare_mask(mask, (3.0, 1.0, 0.5))
    expected = np.argwhere(mask & ~ndimage.binary_erosion(mask))
    assert sorted(map(tuple, prepared.voxel_surface.T)) == sorted(map(tuple, expected))
    assert prepared.voxels == mask.sum()


def test_surfels_are_the_mixed_corners(backend):
    mask = np.zeros((4, 5, 6), bool)
    mask[1, 2, 3] = True  # one voxel: its 8 corners, each with one bit set
    prepared = prepare_mask(mask, (1.0, 1.0, 1.0))
    corners = {tuple(c) for c in prepared.surfels.T}
    assert corners == {(1 + a, 2 + b, 3 + c) for a in (0, 1) for b in (0, 1) for c in (0, 1)}
    # A one-bit code's triangle has normal (1/8)(1, 1, 1): area sqrt(3)/8 at unit spacing.
    assert np.allclose(prepared.surfel_areas, np.sqrt(3) / 8)


def test_far_apart_groups_get_their_own_boxes(backend):
    mask = np.zeros((10, 60, 200), bool)
    mask[2:5, 10:20, 10:20] = True
    mask[6:8, 40:44, 180:185] = True  # a far "false positive"
    prepared = prepare_mask(mask, (5.0, 0.5, 0.5))
    assert sorted(p.crop.shape for p in prepared.parts) == [(2, 4, 5), (3, 10, 10)]
    assert prepared.voxels == mask.sum()
    whole = np.zeros_like(mask)
    for part in prepared.parts:
        z, y, x = part.lo
        dz, dy, dx = part.crop.shape
        whole[z : z + dz, y : y + dy, x : x + dx] |= part.crop
    assert np.array_equal(whole, mask)


def prepare_with_both_backends(mask, spacing) -> list:
    """`prepare_mask` compiled (where numba is installed) and in numpy, in that order."""
    results = []
    for compiled in (True, False):
        if compiled and not _kernels.HAVE_NUMBA:
            continue
        saved, _kernels.HAVE_NUMBA = _kernels.HAVE_NUMBA, compiled
        try:
            results.append(prepare_mask(mask, spacing))
        finally:
            _kernels.HAVE_NUMBA = saved
    return results


def test_both_backends_prepare_the_same_points():
    rng = np.random.default_rng(3)
    mask = ndimage.binary_dilation(random_mask(rng, (9, 20, 30), 0.03))
    results = prepare_with_both_backends(mask, (2.0, 1.0, 1.0))
    for other in results[1:]:
        assert np.array_equal(other.voxel_surface, results[0].voxel_surface)
        assert np.array_equal(other.surfels, results[0].surfels)
        assert np.array_equal(other.surfel_areas, results[0].surfel_areas)


def test_overlap_counts_voxels_in_both():
    rng = np.random.default_rng(2)
    a, b = random_mask(rng, (9, 30, 40), 0.1), random_mask(rng, (9, 30, 40), 0.1)
    a[:, :, 20:] = False  # split a into boxes apart from b's
    b[4, 2, 38] = True
    pa, pb = prepare_mask(a, (1, 1, 1)), prepare_mask(b, (1, 1, 1))
    assert overlap_voxels(pa, pb) == np.count_nonzero(a & b)


def test_empty_mask():
    prepared = prepare_mask(np.zeros((3, 4, 5), np.uint8), (1, 1, 1))
    assert prepared.voxels == 0 and prepared.parts == ()
    assert prepared.voxel_surface.shape == (3, 0) and prepared.surfels.shape == (3, 0)


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.0, 1.0, 1.0), (1.0, -2.0, 1.0)])
def test_bad_spacing_is_rejected(spacing):
    with pytest.raises(ValueError, match="spacing"):
        prepare_mask(np.ones((2, 2, 2), bool), spacing)


def blobs(rng: np.random.Generator, shape=(12, 40, 60), count=40) -> np.ndarray:
    """Many small blobs: more boxes than the cut budget allows, gaps of every width."""
    mask = np.zeros(shape, bool)
    for _ in range(count):
        z, y, x = (int(rng.integers(0, n)) for n in shape)
        mask[z : z + 2, y : y + 3, x : x + 3] = True
    return mask


def test_both_backends_cut_the_same_boxes():
    rng = np.random.default_rng(4)
    mask = blobs(rng)
    mask[:, :, -1] = False
    mask[0, 0, -1] = True  # a box touching the volume's corner
    results = prepare_with_both_backends(mask, (3.0, 1.0, 0.5))
    for other in results[1:]:
        assert [p.lo for p in other.parts] == [p.lo for p in results[0].parts]
        assert [p.hi for p in other.parts] == [p.hi for p in results[0].parts]
        assert np.array_equal(other.voxel_surface, results[0].voxel_surface)
        assert np.array_equal(other.surfels, results[0].surfels)
        assert other.voxels == results[0].voxels == mask.sum()


@pytest.mark.parametrize(
    "make",
    [
        lambda m: m,  # rows of whole uint64 words
        lambda m: m[:, :, :-3],  # rows not a multiple of 8 voxels: read byte by byte
        lambda m: m[:, ::2, :],  # not contiguous
        lambda m: m.astype(np.uint8),
    ],
)
def test_masks_prepared_together_equal_masks_prepared_alone(make):
    rng = np.random.default_rng(5)
    masks = [make(blobs(rng, count=c)) for c in (3, 0, 12)]
    masks.append(make(blobs(rng, shape=(10, 40, 60), count=5)))  # another shape: no mate
    together = prepare_masks(masks, (2.0, 0.8, 0.8))
    for mask, prepared in zip(masks, together, strict=True):
        alone = prepare_mask(mask, (2.0, 0.8, 0.8))
        assert prepared.voxels == alone.voxels == np.count_nonzero(mask)
        assert [p.lo for p in prepared.parts] == [p.lo for p in alone.parts]
        assert np.array_equal(prepared.voxel_surface, alone.voxel_surface)
        assert np.array_equal(prepared.surfels, alone.surfels)
        assert np.array_equal(prepared.surfel_areas, alone.surfel_areas)


@pytest.mark.skipif(not _kernels.HAVE_NUMBA, reason="the compiled pass")
@pytest.mark.parametrize("shape", [(1, 1, 8), (1, 3, 5), (3, 5, 16), (5, 7, 24), (9, 7, 13)])
def test_pass_over_both_masks_equals_numpys_profiles(shape):
    # `_kernels.occupied_profiles` reads blocks of rows from both halves of the volume at once
    # (the last blocks partial, or absent when the blocks are odd in number): every occupied
    # plane must be found, in uint64 words and byte by byte, as numpy's reductions find it.
    rng = np.random.default_rng(6)
    for fill in (0.0, 0.002, 0.05, 0.6):
        a, b = rng.random(shape) < fill, rng.random(shape) < fill
        a[-1, -1, -1] = fill > 0.5  # the very last voxel, in the last (partial) block
        for first, second in ((a, b), (a[:, ::-1], b[:, ::-1])):  # contiguous, or not
            views = [masks_module._scanned(first), masks_module._scanned(second)]
            (words_a, bytes_a), (words_b, bytes_b) = views
            if words_a.dtype != words_b.dtype:
                words_a, words_b = bytes_a, bytes_b
            found = _kernels.occupied_profiles(words_a, bytes_a, words_b, bytes_b)
            expected = [m.any(axis=k) for m in (first, second) for k in ((1, 2), (0, 2), (0, 1))]
            for got, want in zip(found, expected, strict=True):
                assert np.array_equal(got.astype(bool), want)
