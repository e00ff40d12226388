"""The mirrored channel: a head CT flipped across its mid-sagittal plane and registered back.

A stroke is one-sided, so the contralateral hemisphere is each voxel's best control: a
hypodense voxel whose mirror twin is not hypodense is suspicious. Heads lie rotated and shifted
in the scanner, so flipping the array about the image centre puts the twin somewhere else; a
rigid registration (SimpleITK, Euler 3D, started from the heads' principal axes, at a quarter
then half resolution) of the flipped image onto the original brings each twin back under its
voxel. It is deterministic (a fixed sampling seed), so a cached mirror is the mirror any run
would compute on the same machine.

The result is a NIfTI on the image's exact grid, cached per image content (the file name holds
a hash of the image file), so training and inference compute it once per case and every method
(nnU-Net, the SMP 2.5D models) shares it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from bench.io import Geometry, atomic_path, read_image, read_sitk, sha256_file

log = logging.getLogger(__name__)

#: Bumped when the algorithm changes, so that cached mirrors are recomputed.
MIRROR_VERSION = "1"
# Intensity window for the registration metric: soft tissue to bone, air flattened. Bone
# (skull, ~1000 HU) would otherwise dominate mean squares and the brain would barely count.
_WINDOW_HU = (-100.0, 300.0)


@dataclass(frozen=True)
class Registration:
    """How the flipped image was aligned: the transform's parameters and the final metric."""

    angles_rad: tuple[float, float, float]
    translation_mm: tuple[float, float, float]
    metric: float


def lateral_index_axis(image: sitk.Image) -> int:
    """The index axis (0=i, 1=j, 2=k) that runs most nearly along the patient's left-right."""
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    return int(np.argmax(np.abs(direction[0, :])))


def flip_left_right(image: sitk.Image) -> sitk.Image:
    """Reflect across the image's central sagittal plane, keeping the header.

    (`sitk.Flip` would also rewrite the direction and origin so that the physical image stays
    where it was: a no-op in physical space, which is not what a mirror needs.)
    """
    array_axis = 2 - lateral_index_axis(image)  # arrays are (z, y, x)
    flipped = sitk.GetImageFromArray(np.flip(sitk.GetArrayViewFromImage(image), array_axis))
    flipped.CopyInformation(image)
    return flipped


def _metric_image(image: sitk.Image) -> sitk.Image:
    low, high = _WINDOW_HU
    clipped = sitk.Clamp(sitk.Cast(image, sitk.sitkFloat32), sitk.sitkFloat32, low, high)
    return clipped - low  # air at 0, so that the moments initialiser weighs the head only


def _principal_frame(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """Centre (mm) and principal axes (columns) of the head, weighted by windowed intensity."""
    # A copy, not a view: a view of the temporary image would outlive its buffer.
    weights = sitk.GetArrayFromImage(_metric_image(image)).astype(np.float64)
    index = np.argwhere(weights > 0)[:, ::-1]  # (i, j, k) = (x, y, z) index order
    w = weights[weights > 0]
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    points = (index * np.asarray(image.GetSpacing())) @ direction.T + np.asarray(image.GetOrigin())
    centre = np.average(points, axis=0, weights=w)
    offsets = points - centre
    covariance = (offsets * w[:, None]).T @ offsets / w.sum()
    _, axes = np.linalg.eigh(covariance)
    return centre, axes


def initial_alignment(fixed: sitk.Image, moving: sitk.Image) -> sitk.Euler3DTransform:
    """Match the heads' centres and principal axes: a start close enough for a short refinement.

    Intensity moments alone (SimpleITK's MOMENTS initialiser) give the translation only, and a
    head yawed by 10 degrees needs a 20-degree rotation to meet its own mirror image, which the
    optimiser then often fails to find from the identity.
    """
    centre_f, axes_f = _principal_frame(fixed)
    centre_m, axes_m = _principal_frame(moving)
    signs = np.sign(np.sum(axes_f * axes_m, axis=0))  # pair each axis with its nearest twin
    signs[signs == 0] = 1
    rotation = (axes_m * signs) @ axes_f.T  # fixed-space directions -> moving-space directions
    if np.linalg.det(rotation) < 0:  # keep a proper rotation (the flip is done already)
        rotation = (axes_m * signs * np.array([1, 1, -1])) @ axes_f.T
    transform = sitk.Euler3DTransform()
    transform.SetCenter(tuple(centre_f))
    transform.SetMatrix(tuple(rotation.ravel()))
    transform.SetTranslation(tuple(centre_m - centre_f))
    return transform


def register_rigid(fixed: sitk.Image, moving: sitk.Image) -> sitk.Euler3DTransform:
    """The rigid transform that maps fixed-space points to moving-space points."""
    fixed_m, moving_m = _metric_image(fixed), _metric_image(moving)
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMeanSquares()
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(0.25, 1)  # a fixed seed (0 would mean the wall clock)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=2.0, minStep=1e-3, numberOfIterations=100, relaxationFactor=0.7
    )
    method.SetOptimizerScalesFromPhysicalShift()
    # Coarse to half resolution: the coarse level finds the up to ~25-degree turn that a yawed
    # head needs to meet its own mirror image; half resolution is ample for a context channel.
    method.SetShrinkFactorsPerLevel([4, 2])
    method.SetSmoothingSigmasPerLevel([2.0, 1.0])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    method.SetInitialTransform(initial_alignment(fixed, moving), inPlace=True)
    transform = method.Execute(fixed_m, moving_m)
    log.debug(
        "mirror registration: metric %.4g after %d iterations (%s)",
        method.GetMetricValue(),
        method.GetOptimizerIteration(),
        method.GetOptimizerStopConditionDescription(),
    )
    return sitk.Euler3DTransform(transform)


def mirror_and_register(image: sitk.Image) -> tuple[sitk.Image, Registration]:
    """The contralateral image on `image`'s grid, and how it was aligned."""
    flipped = flip_left_right(image)
    transform = register_rigid(image, flipped)
    air = float(np.min(sitk.GetArrayViewFromImage(image)))
    mirrored = sitk.Resample(flipped, image, transform, sitk.sitkLinear, air, image.GetPixelID())
    params = transform.GetParameters()
    metric = float(np.mean((_array(mirrored) - _array(image)) ** 2))
    return mirrored, Registration(tuple(params[:3]), tuple(params[3:]), metric)


def _array(image: sitk.Image) -> np.ndarray:
    low, high = _WINDOW_HU
    return np.clip(sitk.GetArrayViewFromImage(image).astype(np.float32), low, high)


def cache_path(image_path: Path, cache_dir: Path) -> Path:
    """Where the mirror of `image_path` is cached: keyed by the image file's content."""
    digest = sha256_file(image_path)[:16]
    stem = image_path.name.removesuffix(".gz").removesuffix(".nii")
    return Path(cache_dir) / f"{stem}-v{MIRROR_VERSION}-{digest}.nii.gz"


def mirrored_channel(image_path: str | Path, cache_dir: str | Path) -> Path:
    """The path of the (cached) mirrored channel of `image_path`, computing it if needed.

    The file is written atomically, so a crash never leaves a half-written mirror that a
    rerun would trust.
    """
    image_path = Path(image_path)
    target = cache_path(image_path, Path(cache_dir))
    if target.is_file():
        return target
    image = read_sitk(image_path)
    mirrored, registration = mirror_and_register(image)
    log.debug("mirrored %s: %s", image_path.name, registration)
    with atomic_path(target) as tmp:
        sitk.WriteImage(mirrored, str(tmp), useCompression=True)
    return target


def mirrored_array(image_path: str | Path, cache_dir: str | Path) -> tuple[np.ndarray, Geometry]:
    """The mirrored channel as a (z, y, x) array with its geometry (the image's own)."""
    return read_image(mirrored_channel(image_path, cache_dir))
