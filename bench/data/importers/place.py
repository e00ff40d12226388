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
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from bench.data.importers.common import (
    NIFTI_SUFFIXES,
    ImportOptions,
    LabelValues,
    LayoutScan,
    LoadedImage,
    PlacedImage,
    SourceCase,
    image_suffix,
    suffix_of,
)
from bench.data.importers.grid import describe_difference, on_grid
from bench.data.importers.nifti_header import trusted_geometry
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
    notices: list[str] = field(default_factory=list)  # lines the user must see


@dataclass(frozen=True)
class PlaceSettings:
    """The choices `place_case` needs (from ImportOptions and the layout)."""

    label_values: LabelValues
    copy: bool = False
    reorient_labels: bool = False  # lossless axis flips/permutations of masks (DICOM layouts)
    nifti_transform: str | None = None
    copy_image_header: bool = False

    @classmethod
    def of(cls, scan: LayoutScan, options: ImportOptions) -> PlaceSettings:
        return cls(
            scan.label_values,
            options.copy,
            scan.reorient_labels,
            options.nifti_transform,
            options.copy_image_header,
        )


def place_case(case: SourceCase, root: Path, settings: PlaceSettings) -> PlacedCase:
    """Write one case's image and labels under `root`; raise InputError / SkipCase on bad input."""
    how: dict[str, str] = {}
    notices: list[str] = []
    meta = dict(case.meta)
    image_rel, placed = _place_image(case, root, settings, how, meta, notices)
    labels, volumes = {}, {}
    for rater, source in case.labels.items():
        if isinstance(source, Path):
            raw, file, linkable = _read_label_file(
                source, case.id, rater, placed, settings, notices
            )
        else:
            raw, file, linkable = source(placed), case.origin, False
            _check_shape(raw, placed.geometry, case.id, rater, file)
        mask, unchanged = binarize(raw, settings.label_values, case.id, file)
        if not mask.any() and np.any(raw):
            notices.append(_emptied(case.id, rater, raw, settings.label_values, file))
        volumes[rater] = float(np.count_nonzero(mask)) * placed.geometry.voxel_volume_ml
        if linkable and unchanged and isinstance(source, Path):
            rel = f"labels/{rater}/{case.id}{suffix_of(source)}"
            how[rel] = _link_or_copy(source, root / rel, settings.copy)
        else:
            rel = f"labels/{rater}/{case.id}.nii.gz"
            write_image(mask, placed.geometry, root / rel)
            how[rel] = "converted"
        labels[rater] = rel
    return PlacedCase(case.id, image_rel, labels, placed.geometry, volumes, how, meta, notices)


def _emptied(case: str, rater: str, raw: np.ndarray, values: LabelValues, file: Path) -> str:
    stored = sorted(int(v) for v in np.unique(raw) if v != 0)
    return (
        f"case {case}: {file}: rater {rater} mask holds value(s) {stored[:6]} but the lesion "
        f"values are {sorted(values.lesion)}: imported as an EMPTY mask"
    )


def _place_image(
    case: SourceCase,
    root: Path,
    settings: PlaceSettings,
    how: dict[str, str],
    meta: dict[str, Any],
    notices: list[str],
) -> tuple[str, PlacedImage]:
    if isinstance(case.image, Path) and image_suffix(case.image.name, NIFTI_SUFFIXES):
        with _readable(case.image, case.id) as readable:
            geometry = read_geometry(readable, case.id)
            _check_3d(geometry, case.id, case.image)
            trusted = trusted_geometry(readable, case.id, geometry, settings.nifti_transform)
            if trusted is None:
                rel = f"images/{case.id}{suffix_of(case.image)}"
                how[rel] = _link_or_copy(case.image, root / rel, settings.copy)
                return rel, PlacedImage(geometry)
            geometry, why = trusted
            notices.append(f"case {case.id}: {case.image}: {why}")
            meta["nifti_transform"] = settings.nifti_transform
            loaded = LoadedImage(geometry.apply_to(read_sitk(readable, case.id)))
    elif isinstance(case.image, Path):
        with _readable(case.image, case.id) as readable:
            loaded = LoadedImage(read_sitk(readable, case.id))
    else:
        loaded = case.image()
    geometry = Geometry.of(loaded.image)
    _check_3d(geometry, case.id, case.origin)
    meta.update(loaded.meta)
    notices.extend(f"case {case.id}: {case.origin}: {text}" for text in loaded.notices)
    rel = f"images/{case.id}.nii.gz"
    write_image(sitk.GetArrayFromImage(loaded.image), geometry, root / rel)
    how[rel] = "converted"
    return rel, PlacedImage(geometry, loaded.slice_files)


@contextmanager
def _readable(path: Path, case: str) -> Iterator[Path]:
    """`path` under a name every reader takes; problems still name `path` itself.

    Files are found whatever the case of their suffix, but ITK's NIfTI reader refuses a
    mixed-case one (`.Nii.Gz`): such a file is read through a link named `<case>.nii.gz`.
    """
    suffix = image_suffix(path.name)
    if suffix is None or path.name.endswith((suffix, suffix.upper())):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="bench-import-") as folder:
        link = Path(folder) / f"{case}{suffix}"
        link.symlink_to(path.resolve())
        try:
            yield link
        except InputError as error:
            raise InputError(error.finding.problem, case, path) from error


def _check_3d(geometry: Geometry, case: str, file: Path) -> None:
    if len(geometry.shape_zyx) != 3:
        raise InputError(
            f"image must be 3D, got {len(geometry.shape_zyx)}D of shape {geometry.shape_zyx}",
            case,
            file,
        )


def _read_label_file(
    path: Path,
    case: str,
    rater: str,
    placed: PlacedImage,
    settings: PlaceSettings,
    notices: list[str],
) -> tuple[np.ndarray, Path, bool]:
    """Read a mask file and prove it lies on the image's grid (the third value: linkable).

    Within the grid tolerance the mask is written with the image's header (every tool then
    agrees to the last digit); a linked mask matches it to float noise already.
    """
    geometry = placed.geometry
    with _readable(path, case) as readable:
        label = read_sitk(readable, case)
        trusted = trusted_geometry(readable, case, Geometry.of(label), settings.nifti_transform)
    if trusted is not None:
        label = trusted[0].apply_to(label)
        notices.append(f"case {case}: {path}: {trusted[1]}")
    found = Geometry.of(label)
    where = f"case {case}: {path}: rater {rater} mask"
    if geometry.mismatch(found) is None:
        linkable = trusted is None and image_suffix(path.name, NIFTI_SUFFIXES) is not None
        return sitk.GetArrayFromImage(label), path, linkable
    if on_grid(geometry, found):
        notices.append(
            f"{where} header differs from the image's within the tolerance: "
            f"{describe_difference(geometry, found)}; written with the image's header"
        )
        return sitk.GetArrayFromImage(label), path, False
    if settings.reorient_labels:
        reoriented = _reorient_like(label, geometry)
        if reoriented is not None:
            log.info("case %s: rater %s mask %s reoriented to the image's axes", case, rater, path)
            return sitk.GetArrayFromImage(reoriented), path, False
    difference = describe_difference(geometry, found)
    if settings.copy_image_header and found.shape_zyx == geometry.shape_zyx:
        notices.append(f"{where} given the image's header (--copy-image-header): {difference}")
        return sitk.GetArrayFromImage(label), path, False
    hint = ""
    if found.shape_zyx == geometry.shape_zyx:
        hint = (
            "; if it was drawn on this image's voxels, --copy-image-header gives it the "
            "image's header"
        )
    raise InputError(f"rater {rater} mask is on another grid: {difference}{hint}", case, path)


def _reorient_like(label: sitk.Image, geometry: Geometry) -> sitk.Image | None:
    """The same voxels with the image's axis order and signs, when that is all that differs.

    Converters (dcm2niix, ITK-SNAP exports) store masks of a DICOM series with flipped or
    permuted axes; a flip or permutation moves no voxel centre, so it is lossless.
    """
    if label.GetDimension() != 3 or len(geometry.shape_zyx) != 3:
        return None
    target = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(geometry.direction)
    reoriented = sitk.DICOMOrient(label, target)
    return reoriented if on_grid(geometry, Geometry.of(reoriented)) else None


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
        keep_all = ",".join(str(v) for v in sorted(values.lesion | set(outside)))
        raise InputError(
            f"label value(s) {outside[:6]} outside the expected set {sorted(values.allowed)} "
            f"(if they mark lesion, --lesion-values {keep_all} counts them and every lesion "
            "value counted now)",
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
