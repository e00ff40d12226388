"""Mask preparation: boxes, surface voxels and surfels, against scipy and DeepMind's definitions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from bench.errors import InputError
from bench.evaluate import _kernels, masks
from bench.evaluate.masks import overlap_voxels, prepare_mask, prepare_masks


def random_mask(rng: np.random.Generator, shape=(7, 9, 11), fill=0.3) -> np.ndarray:
    return rng.random(shape) < fill


def test_surfel_areas_are_deepminds():
    from tests.evaluate.deepmind import surface_metrics  # skips without surface-distance

    rng = np.random.default_rng(0)
    mask = ndimage.binary_dilation(random_mask(rng, (9, 12, 10), 0.05))
    other = np.zeros_like(mask)
    other[4, 6, 5] = True
    spacing = (3.0, 0.8, 0.6)
    theirs = surface_metrics(mask, other, spacing)["areas_reference"]
    assert np.array_equal(np.sort(prepare_mask(mask, spacing).surfel_areas), np.sort(theirs))


def test_voxel_surface_is_mask_minus_face_erosion():
    rng = np.random.default_rng(1)
    mask = ndimage.binary_dilation(random_mask(rng, (12, 14, 10), 0.05), iterations=2)
    mask[0, 3:6, 3:6] = True  # touches the volume border: counts as surface (border_value=0)
    prepared = prepare_mask(mask, (3.0, 1.0, 0.5))
    expected = np.argwhere(mask & ~ndimage.binary_erosion(mask))
    assert sorted(map(tuple, prepared.voxel_surface.T)) == sorted(map(tuple, expected))
    assert prepared.voxels == mask.sum()


def test_surfels_are_the_mixed_corners():
    mask = np.zeros((4, 5, 6), bool)
    mask[1, 2, 3] = True  # one voxel: its 8 corners, each with one bit set
    prepared = prepare_mask(mask, (1.0, 1.0, 1.0))
    corners = {tuple(c) for c in prepared.surfels.T}
    assert corners == {(1 + a, 2 + b, 3 + c) for a in (0, 1) for b in (0, 1) for c in (0, 1)}
    # A one-bit code's triangle has normal (1/8)(1, 1, 1): area sqrt(3)/8 at unit spacing.
    assert np.allclose(prepared.surfel_areas, np.sqrt(3) / 8)


def covered(prepared, shape) -> np.ndarray:
    """The voxels inside the prepared mask's boxes."""
    inside = np.zeros(shape, bool)
    for z0, y0, x0, z1, y1, x1 in prepared.boxes.tolist():
        inside[z0 : z1 + 1, y0 : y1 + 1, x0 : x1 + 1] = True
    return inside


def test_far_apart_groups_get_their_own_boxes():
    mask = np.zeros((10, 60, 200), bool)
    mask[2:5, 10:20, 10:20] = True
    mask[6:8, 40:44, 180:185] = True  # a far "false positive"
    prepared = prepare_mask(mask, (5.0, 0.5, 0.5))
    assert sorted(prepared.boxes.tolist()) == [[2, 10, 10, 4, 19, 19], [6, 40, 180, 7, 43, 184]]
    assert prepared.voxels == mask.sum()


def blobs(rng: np.random.Generator, shape=(12, 40, 60), count=40) -> np.ndarray:
    """Many small blobs: more boxes than the cut budget allows, gaps of every width."""
    mask = np.zeros(shape, bool)
    for _ in range(count):
        z, y, x = (int(rng.integers(0, n)) for n in shape)
        mask[z : z + 2, y : y + 3, x : x + 3] = True
    return mask


def test_boxes_hold_every_voxel_and_respect_the_budget():
    rng = np.random.default_rng(4)
    mask = blobs(rng)
    mask[0, 0, -1] = True  # a box touching the volume's corner
    prepared = prepare_mask(mask, (3.0, 1.0, 0.5))
    assert 1 <= len(prepared.boxes) <= masks.MAX_PARTS
    assert not (mask & ~covered(prepared, mask.shape)).any()
    assert prepared.voxels == mask.sum()
    expected = np.argwhere(mask & ~ndimage.binary_erosion(mask))
    assert sorted(map(tuple, prepared.voxel_surface.T)) == sorted(map(tuple, expected))


def test_overlap_counts_voxels_in_both():
    rng = np.random.default_rng(2)
    a, b = random_mask(rng, (9, 30, 40), 0.1), random_mask(rng, (9, 30, 40), 0.1)
    a[:, :, 20:] = False  # split a into boxes apart from b's
    b[4, 2, 38] = True
    pa, pb = prepare_mask(a, (1, 1, 1)), prepare_mask(b, (1, 1, 1))
    assert overlap_voxels(pa, pb) == np.count_nonzero(a & b)


@pytest.mark.parametrize("shape", [(3, 4, 5), (0, 4, 5)])
def test_empty_mask(shape):
    prepared = prepare_mask(np.zeros(shape, np.uint8), (1, 1, 1))
    assert prepared.voxels == 0 and prepared.boxes.shape == (0, 6)
    assert prepared.voxel_surface.shape == (3, 0) and prepared.surfels.shape == (3, 0)


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.0, 1.0, 1.0), (1.0, -2.0, 1.0), (1, 1, 1e-4)])
def test_bad_spacing_is_rejected(spacing):
    with pytest.raises(InputError, match="spacing"):
        prepare_mask(np.ones((2, 2, 2), bool), spacing)


@pytest.mark.parametrize(
    "make",
    [
        lambda m: m,  # rows of whole uint64 words
        lambda m: m[:, :, :-3],  # rows not a multiple of 8 voxels: read byte by byte
        lambda m: m[:, ::2, :],  # not contiguous
        lambda m: m.astype(np.uint8),
        lambda m: m.astype(np.int16),  # not one byte: converted
    ],
)
def test_masks_prepared_together_equal_masks_prepared_alone(make):
    rng = np.random.default_rng(5)
    group = [make(blobs(rng, count=c)) for c in (3, 0, 12)]
    group.append(make(blobs(rng, shape=(10, 40, 60), count=5)))  # another shape: no mate
    together = prepare_masks(group, (2.0, 0.8, 0.8))
    for mask, prepared in zip(group, together, strict=True):
        alone = prepare_mask(mask, (2.0, 0.8, 0.8))
        assert prepared.voxels == alone.voxels == np.count_nonzero(mask)
        assert np.array_equal(prepared.boxes, alone.boxes)
        assert np.array_equal(prepared.voxel_surface, alone.voxel_surface)
        assert np.array_equal(prepared.surfels, alone.surfels)
        assert np.array_equal(prepared.surfel_areas, alone.surfel_areas)
        expected = np.argwhere(mask & ~ndimage.binary_erosion(mask))
        assert sorted(map(tuple, prepared.voxel_surface.T)) == sorted(map(tuple, expected))


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
            (words_a, bytes_a), (words_b, bytes_b) = masks._views(first), masks._views(second)
            if words_a.dtype != words_b.dtype:
                words_a, words_b = bytes_a, bytes_b
            found = _kernels.occupied_profiles(words_a, bytes_a, words_b, bytes_b)
            expected = [m.any(axis=k) for m in (first, second) for k in ((1, 2), (0, 2), (0, 1))]
            for got, want in zip(found, expected, strict=True):
                assert np.array_equal(got.astype(bool), want)
