"""Put one case into the dataset: link (or copy) what can stay as it is, convert the rest.

Linking keeps the user's pixels where they are: `images/<case>.nii.gz` becomes a symlink to
their file (absolute target, so the dataset folder can be moved). Labels are linked only when
they already are a binary {0, 1} mask on the image's grid; anything else (other label values,
PNG slices, reoriented masks) is written as a new binary uint8 NIfTI.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from bench.data.importers.common import (
    NIFTI_SUFFIXES,
    LabelValues,
    LoadedImage,
    PlacedImage,
    SourceCase,
    suffix_of,
)
from bench.errors import InputError
from bench.io import Geometry, read_geometry, read_sitk, write_image

log = logging.getLogger(__name__)


@dataclass
class PlacedCase:
    """A case written into the dataset: manifest entry material plus what the summary needs."""

    id: str
    image: str  # relative to the dataset root
    labels: dict[str, str]
    geometry: Geometry
    lesion_ml: dict[str, float]
    how: dict[str, str]  # file -> "linked" | "copied" | "converted"
    meta: dict[str, Any] = field(default_factory=dict)


def place_case(
    case: SourceCase,
    root: Path,
    label_values: LabelValues,
    copy: bool = False,
    reorient_labels: bool = False,
) -> PlacedCase:
    """Write one case's image and labels under `root`; raise InputError / SkipCase on bad input."""
    how: dict[str, str] = {}
    meta = dict(case.meta)
    image_rel, placed = _place_image(case, root, copy, how, meta)
    labels, volumes = {}, {}
    for rater, source in case.labels.items():
        if isinstance(source, Path):
            raw, file, linkable = _read_label_file(
                source, case.id, rater, placed.geometry, reorient_labels
            )
        else:
            raw, file, linkable = source(placed), case.origin, False
            _check_shape(raw, placed.geometry, case.id, rater, file)
        mask, unchanged = binarize(raw, label_values, case.id, file)
        volumes[rater] = float(np.count_nonzero(mask)) * placed.geometry.voxel_volume_ml
        if linkable and unchanged and isinstance(source, Path):
            rel = f"labels/{rater}/{case.id}{suffix_of(source)}"
            how[rel] = _link_or_copy(source, root / rel, copy)
        else:
            rel = f"labels/{rater}/{case.id}.nii.gz"
            write_image(mask, placed.geometry, root / rel)
            how[rel] = "converted"
        labels[rater] = rel
    return PlacedCase(case.id, image_rel, labels, placed.geometry, volumes, how, meta)


def _place_image(
    case: SourceCase, root: Path, copy: bool, how: dict[str, str], meta: dict[str, Any]
) -> tuple[str, PlacedImage]:
    if isinstance(case.image, Path) and case.image.name.endswith(NIFTI_SUFFIXES):
        geometry = read_geometry(case.image, case.id)
        _check_3d(geometry, case.id, case.image)
        rel = f"images/{case.id}{suffix_of(case.image)}"
        how[rel] = _link_or_copy(case.image, root / rel, copy)
        return rel, PlacedImage(geometry)
    if isinstance(case.image, Path):
        loaded = LoadedImage(read_sitk(case.image, case.id))
    else:
        loaded = case.image()
    geometry = Geometry.of(loaded.image)
    _check_3d(geometry, case.id, case.origin)
    meta.update(loaded.meta)
    rel = f"images/{case.id}.nii.gz"
    write_image(sitk.GetArrayFromImage(loaded.image), geometry, root / rel)
    how[rel] = "converted"
    return rel, PlacedImage(geometry, loaded.slice_files)


def _check_3d(geometry: Geometry, case: str, file: Path) -> None:
    if len(geometry.shape_zyx) != 3:
        raise InputError(
            f"image must be 3D, got {len(geometry.shape_zyx)}D of shape {geometry.shape_zyx}",
            case,
            file,
        )


def _read_label_file(
    path: Path, case: str, rater: str, geometry: Geometry, reorient: bool
) -> tuple[np.ndarray, Path, bool]:
    """Read a mask file and prove it lies on the image's grid (the third value: linkable)."""
    label = read_sitk(path, case)
    mismatch = geometry.mismatch(Geometry.of(label))
    if mismatch and reorient:
        reoriented = _reorient_like(label, geometry)
        if reoriented is not None:
            log.info("case %s: rater %s mask %s reoriented to the image's axes", case, rater, path)
            return sitk.GetArrayFromImage(reoriented), path, False
    if mismatch:
        raise InputError(f"rater {rater} mask is on another grid: {mismatch}", case, path)
    return sitk.GetArrayFromImage(label), path, path.name.endswith(NIFTI_SUFFIXES)


def _reorient_like(label: sitk.Image, geometry: Geometry) -> sitk.Image | None:
    """The same voxels with the image's axis order and signs, when that is all that differs.

    Converters (dcm2niix, ITK-SNAP exports) store masks of a DICOM series with flipped or
    permuted axes; a flip or permutation moves no voxel centre, so it is lossless.
    """
    if label.GetDimension() != 3 or len(geometry.shape_zyx) != 3:
        return None
    target = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(geometry.direction)
    reoriented = sitk.DICOMOrient(label, target)
    return reoriented if geometry.mismatch(Geometry.of(reoriented)) is None else None


def _check_shape(raw: np.ndarray, geometry: Geometry, case: str, rater: str, file: Path) -> None:
    if tuple(raw.shape) != tuple(geometry.shape_zyx):
        raise InputError(
            f"rater {rater} mask shape {raw.shape} differs from the image's "
            f"{geometry.shape_zyx} (z, y, x)",
            case,
            file,
        )


def binarize(
    raw: np.ndarray, values: LabelValues, case: str, file: str | Path
) -> tuple[np.ndarray, bool]:
    """The lesion mask (uint8 0/1) and whether the stored values already were exactly that."""
    stored = np.unique(raw)
    if stored.dtype.kind == "f":
        if not np.isfinite(stored).all():
            raise InputError("label has NaN/Inf values", case, file)
        if not np.equal(np.mod(stored, 1), 0).all():
            odd = [float(v) for v in stored[np.mod(stored, 1) != 0][:4]]
            raise InputError(f"label has non-integer values {odd}", case, file)
    found = {int(v) for v in stored}
    outside = sorted(found - values.allowed)
    if outside:
        raise InputError(
            f"label value(s) {outside[:6]} outside the expected set {sorted(values.allowed)} "
            "(set --label-values / --lesion-values if they are meant)",
            case,
            file,
        )
    mask = np.isin(raw, sorted(values.lesion)).astype(np.uint8)
    unchanged = found <= {0, 1} and (1 in values.lesion or 1 not in found)
    return mask, unchanged


def _link_or_copy(source: Path, target: Path, copy: bool) -> str:
    target.parent.mkdir(parents=True, exist_ok=True)
    if copy:
        shutil.copyfile(source, target)
        return "copied"
    try:
        os.symlink(source.resolve(), target)
    except OSError as error:  # file systems without symlinks: a copy is still correct
        log.warning("cannot symlink %s (%s); copying instead", source, error)
        shutil.copyfile(source, target)
        return "copied"
    return "linked"
