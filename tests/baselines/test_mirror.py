"""The mirrored channel: registration brings each voxel's contralateral twin back under it.

Expected values come from geometry: a head that is symmetric in its own frame, posed with a
known yaw, roll and shift, has a known mirror transform; a plain flip of the array is wrong by
twice the yaw. The registered mirror must match the original about as well as that known
transform does (the floor left by interpolating 6 mm slices), far better than a flip.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from bench.io import read_geometry, write_image
from bench.mirror import flip_left_right, mirror_and_register, mirrored_channel
from tests.baselines.synthetic import Lesion, Pose, _rotation, centred_geometry, head_volume

GEOMETRY = centred_geometry()


def as_image(array: np.ndarray) -> sitk.Image:
    return GEOMETRY.apply_to(sitk.GetImageFromArray(array))


def windowed_mse(a: sitk.Image, b: sitk.Image) -> float:
    """Mean squared difference in the registration's window (-100..300 HU)."""
    x, y = (np.clip(sitk.GetArrayFromImage(i).astype(float), -100, 300) for i in (a, b))
    return float(np.mean((x - y) ** 2))


def true_mirror(image: sitk.Image, pose: Pose) -> sitk.Image:
    """The flipped image moved by the transform that the pose implies (worked out by hand).

    The head is symmetric under F = diag(-1, 1, 1) in its own frame and sits in the scanner at
    p = R h + t, so its mirror twin of p is R F R^T (p - t) + t; the centred flip is F itself,
    hence the flipped image must be sampled at F (R F R^T (p - t) + t).
    """
    rotation, flip, shift = _rotation(pose), np.diag([-1.0, 1.0, 1.0]), np.array(pose.shift_mm)
    matrix = flip @ rotation @ flip @ rotation.T
    transform = sitk.AffineTransform(3)
    transform.SetMatrix(tuple(matrix.ravel()))
    transform.SetTranslation(tuple(-matrix @ shift + flip @ shift))
    return sitk.Resample(flip_left_right(image), image, transform, sitk.sitkLinear, -1000.0)


@pytest.mark.parametrize(
    "pose", [Pose(10.0, 3.0, (5.0, -4.0, 0.0)), Pose(-12.0, -4.0, (-6.0, 6.0, 0.0))]
)
def test_registered_mirror_matches_a_symmetric_head_far_better_than_a_flip(pose):
    image = as_image(head_volume(GEOMETRY, pose, lesion=None)[0])
    mirrored, registration = mirror_and_register(image)
    registered = windowed_mse(mirrored, image)
    flipped = windowed_mse(flip_left_right(image), image)
    floor = windowed_mse(true_mirror(image, pose), image)
    assert registered < 0.35 * flipped
    assert registered < 1.15 * floor
    # The flip turns a head yawed by +a into one yawed by -a: registration must undo 2a.
    assert np.degrees(registration.angles_rad[2]) == pytest.approx(-2 * pose.yaw_deg, abs=3.0)


def test_the_mirror_is_deterministic():
    image = as_image(head_volume(GEOMETRY, Pose(9.0, 2.0, (4.0, 1.0, 0.0)), lesion=None)[0])
    first, second = mirror_and_register(image)[0], mirror_and_register(image)[0]
    assert np.array_equal(sitk.GetArrayFromImage(first), sitk.GetArrayFromImage(second))


def test_an_upright_centred_head_is_its_own_mirror():
    image = as_image(head_volume(GEOMETRY, Pose(), lesion=None)[0])
    mirrored, _ = mirror_and_register(image)
    assert windowed_mse(mirrored, image) < 1.0


def test_the_mirror_shows_healthy_tissue_where_the_lesion_is():
    lesion = Lesion(centre_mm=(25.0, 0.0, 0.0), radii_mm=(12.0, 15.0, 10.0))
    array, mask = head_volume(GEOMETRY, Pose(8.0, 0.0, (3.0, 2.0, 0.0)), lesion)
    mirrored, _ = mirror_and_register(as_image(array))
    core = mask.astype(bool)
    mirrored_values = sitk.GetArrayFromImage(mirrored)[core].astype(float)
    assert mirrored_values.mean() > array[core].mean() + 10.0  # the twin is not hypodense


def test_the_mirror_is_cached_per_image_content(tmp_path):
    array = head_volume(GEOMETRY, Pose(6.0, 2.0, (2.0, -3.0, 0.0)), lesion=None)[0]
    image = tmp_path / "case.nii.gz"
    write_image(array, GEOMETRY, image)
    first = mirrored_channel(image, tmp_path / "cache")
    stamp = first.stat().st_mtime_ns
    assert mirrored_channel(image, tmp_path / "cache") == first
    assert first.stat().st_mtime_ns == stamp  # not recomputed
    assert read_geometry(first).mismatch(GEOMETRY) is None
    assert not list((tmp_path / "cache").glob(".*tmp*"))  # atomic: no temp file left
    write_image(array + 1, GEOMETRY, image)  # new content, same name: a new mirror
    assert mirrored_channel(image, tmp_path / "cache") != first
