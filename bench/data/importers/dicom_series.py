"""Read one CT series from a folder of DICOM files into Hounsfield units, or say why not.

SimpleITK's series reader does the pixel work (it applies each slice's rescale slope and
intercept, so values come out in HU), but it trusts the headers: it silently drops files it
cannot parse and stacks slices across a gap or a change of slice spacing. So the headers are
read first (cheap, no pixels) and checked: one series, same size and orientation, positions
evenly spaced along the slice normal, no jump in instance numbers, no gantry tilt. Files that
are not DICOM at all (a `Thumbs.db`, a report) are left out and listed. The geometry written
is the one computed here from the headers; a series that would need resampling is reported,
never resampled. A tilted series (`--allow-tilt`) gets the grid ITK gives it, so masks drawn
in ITK-SNAP fit: origin and in-plane axes of the first slice, the third axis along the slice
normal, and as slice spacing the distance between consecutive slice positions.
"""

from __future__ import annotations

import locale
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from bench.data.importers.common import LoadedImage, natural_key, visible_files
from bench.errors import InputError

log = logging.getLogger(__name__)

TAG_SERIES_UID = "0020|000e"
TAG_POSITION = "0020|0032"
TAG_ORIENTATION = "0020|0037"
TAG_INSTANCE = "0020|0013"
TAG_ROWS, TAG_COLUMNS = "0028|0010", "0028|0011"
TAG_PIXEL_SPACING = "0028|0030"
TAG_SLOPE, TAG_INTERCEPT = "0028|1053", "0028|1052"
TAG_TILT = "0018|1120"
TAG_MODALITY = "0008|0060"
DICOM_MAGIC_OFFSET, DICOM_MAGIC = 128, b"DICM"  # DICOM part 10: "DICM" after a 128-byte preamble
TILT_TOLERANCE_DEG = 0.1
# Slice positions are stored with limited precision; a real gap is a whole slice or more.
SPACING_TOLERANCE_MM = 0.02
SPACING_TOLERANCE_REL = 0.02


@dataclass(frozen=True)
class SliceHeader:
    file: Path
    position: np.ndarray  # (3,) mm, LPS
    orientation: np.ndarray  # (6,) row then column direction cosines
    instance: int | None
    rows_cols: tuple[int, int]
    pixel_spacing: tuple[float, float] | None  # (row spacing = y, column spacing = x) in mm
    series_uid: str
    modality: str
    rescale: tuple[str, str]  # (slope, intercept) as stored
    tilt_tag: str


def series_files(folder: Path, case: str | None = None) -> list[Path]:
    """Candidate slice files in `folder` (recursively), natural order."""
    if not folder.is_dir():
        raise InputError("DICOM folder is missing", case, folder)
    files = [p for p in visible_files(folder, recursive=True) if p.name.upper() != "DICOMDIR"]
    if not files:
        raise InputError("no DICOM files in the folder", case, folder)
    return sorted(files, key=lambda p: (natural_key(p.parent), natural_key(p)))


def has_dicom_magic(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(DICOM_MAGIC_OFFSET)
        return handle.read(len(DICOM_MAGIC)) == DICOM_MAGIC


@contextmanager
def _locale_kept() -> Iterator[None]:
    """GDCM (behind SimpleITK's DICOM reading) resets the process locale to "C", after which
    every `open()` without an encoding decodes ASCII: put the locale back."""
    saved = locale.setlocale(locale.LC_ALL)
    try:
        yield
    finally:
        locale.setlocale(locale.LC_ALL, saved)


class NotDicom(Exception):
    """A file in a series folder that is not DICOM at all (left out and listed)."""


def read_header(path: Path, case: str | None) -> SliceHeader:
    reader = sitk.ImageFileReader()
    reader.SetImageIO("GDCMImageIO")
    reader.SetFileName(str(path))
    try:
        with _locale_kept():
            reader.ReadImageInformation()
    except RuntimeError as error:
        if not has_dicom_magic(path):
            raise NotDicom(path) from error
        raise InputError("cannot be read as DICOM (corrupted or truncated)", case, path) from error

    def tag(key: str) -> str:
        return reader.GetMetaData(key).strip() if reader.HasMetaDataKey(key) else ""

    position, orientation = _floats(tag(TAG_POSITION)), _floats(tag(TAG_ORIENTATION))
    if len(position) != 3 or len(orientation) != 6:
        raise InputError(
            "no ImagePositionPatient / ImageOrientationPatient: slice order unknown", case, path
        )
    spacing = _floats(tag(TAG_PIXEL_SPACING))
    instance = tag(TAG_INSTANCE)
    return SliceHeader(
        file=path,
        position=np.asarray(position),
        orientation=np.asarray(orientation),
        instance=int(float(instance)) if instance else None,
        rows_cols=(int(tag(TAG_ROWS) or 0), int(tag(TAG_COLUMNS) or 0)),
        pixel_spacing=(spacing[0], spacing[1]) if len(spacing) == 2 else None,
        series_uid=tag(TAG_SERIES_UID),
        modality=tag(TAG_MODALITY),
        rescale=(tag(TAG_SLOPE) or "1", tag(TAG_INTERCEPT) or "0"),
        tilt_tag=tag(TAG_TILT),
    )


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split("\\") if v.strip()]
    except ValueError:
        return []


def read_series(folder: Path, case: str | None = None, allow_tilt: bool = False) -> LoadedImage:
    """The series in `folder` as an image in HU with header-derived geometry."""
    headers, not_dicom = [], []
    for path in series_files(folder, case):
        try:
            headers.append(read_header(path, case))
        except NotDicom:
            not_dicom.append(path.name)
    if not headers:
        names = ", ".join(not_dicom[:3])
        raise InputError(f"no DICOM files in the folder (not DICOM: {names})", case, folder)
    notices = [f"{name}: not used (not a DICOM file)" for name in not_dicom]
    _check_one_series(headers, case, folder)
    ordered, step_mm, tilt_deg = _ordered_slices(headers, case, folder, allow_tilt)
    files = [str(h.file) for h in ordered]
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    try:
        with _locale_kept():
            image = reader.Execute()
    except RuntimeError as error:
        raise InputError("pixel data cannot be read (corrupted DICOM)", case, folder) from error
    hu = _as_hu(sitk.GetArrayFromImage(image))
    out = sitk.GetImageFromArray(hu)
    first = ordered[0]
    row, col = first.orientation[:3], first.orientation[3:]
    normal = np.cross(row, col)
    pixel_spacing = first.pixel_spacing
    if pixel_spacing is None:
        log.warning("case %s: no PixelSpacing (0028,0030) in %s; assuming 1 mm", case, folder)
        pixel_spacing = (1.0, 1.0)
    out.SetSpacing((pixel_spacing[1], pixel_spacing[0], step_mm))
    out.SetOrigin(tuple(float(v) for v in first.position))
    out.SetDirection(tuple(float(v) for v in np.column_stack([row, col, normal]).ravel()))
    slopes = sorted({h.rescale for h in ordered})
    meta = {
        "dicom_series_uid": first.series_uid,
        "dicom_slices": len(ordered),
        "dicom_rescale_slope_intercept": [list(s) for s in slopes][:4],
        "slice_spacing_mm": round(step_mm, 4),
    }
    if tilt_deg > TILT_TOLERANCE_DEG:
        meta["gantry_tilt_deg"] = round(tilt_deg, 2)
        notices.append(
            f"gantry tilt of {tilt_deg:.1f} degrees kept as acquired (--allow-tilt), on the "
            f"grid ITK and ITK-SNAP read: slice spacing {step_mm:.3f} mm (distance between "
            f"slice positions), slices not sheared, so voxel volumes are "
            f"{100 * (1 / math.cos(math.radians(tilt_deg)) - 1):.1f}% larger than acquired"
        )
    if first.modality and first.modality != "CT":
        log.warning("case %s: DICOM modality is %s, not CT (%s)", case, first.modality, folder)
    return LoadedImage(out, meta, tuple(h.file for h in ordered), notices)


def _check_one_series(headers: list[SliceHeader], case: str | None, folder: Path) -> None:
    uids = sorted({h.series_uid for h in headers})
    if len(uids) > 1:
        raise InputError(
            f"holds {len(uids)} DICOM series ({', '.join(u[-12:] for u in uids[:3])}...); "
            "one series per case expected",
            case,
            folder,
        )
    if len(headers) < 2:
        raise InputError("a series needs at least 2 slices", case, folder)
    first = headers[0]
    for h in headers[1:]:
        if h.rows_cols != first.rows_cols:
            raise InputError(
                f"slice size {h.rows_cols} differs from {first.rows_cols} ({first.file.name})",
                case,
                h.file,
            )
        if not np.allclose(h.orientation, first.orientation, atol=1e-4):
            raise InputError(
                f"slice orientation differs from {first.file.name} (mixed series)", case, h.file
            )


def _ordered_slices(
    headers: list[SliceHeader], case: str | None, folder: Path, allow_tilt: bool
) -> tuple[list[SliceHeader], float, float]:
    """Slices sorted along the normal, the slice spacing (mm) and the gantry tilt (degrees)."""
    orientation = headers[0].orientation
    normal = np.cross(orientation[:3], orientation[3:])
    ordered = sorted(headers, key=lambda h: float(h.position @ normal))
    along = np.array([float(h.position @ normal) for h in ordered])
    steps = np.diff(along)
    step = float(np.median(steps))
    tolerance = max(SPACING_TOLERANCE_MM, SPACING_TOLERANCE_REL * step)
    for i, gap in enumerate(steps):
        if gap < tolerance:
            raise InputError(
                f"two slices at the same position ({ordered[i].file.name} and "
                f"{ordered[i + 1].file.name}): duplicated slice or mixed series",
                case,
                ordered[i + 1].file,
            )
    runs = _runs(steps, tolerance)
    if len(runs) > 1:
        problem, file = _spacing_problem(runs, ordered, step)
        raise InputError(problem, case, file)
    _check_instance_numbers(ordered, case)
    shift = ordered[-1].position - ordered[0].position
    tilt = math.degrees(math.acos(min(1.0, abs(float(shift @ normal)) / np.linalg.norm(shift))))
    if tilt > TILT_TOLERANCE_DEG:
        if not allow_tilt:
            raise InputError(
                f"gantry tilt of {tilt:.1f} degrees (sheared slices; DICOM tag 0018,1120 = "
                f"{headers[0].tilt_tag or 'absent'}): not resampled; correct the tilt first "
                "(e.g. dcm2niix) or import the acquired slices with --allow-tilt",
                case,
                folder,
            )
        # ITK's series reader: the distance between consecutive slice positions.
        distances = np.linalg.norm(np.diff([h.position for h in ordered], axis=0), axis=1)
        step = float(np.median(distances))
    return ordered, step, tilt


@dataclass(frozen=True)
class Run:
    """Consecutive slice steps of one size: steps `first` .. `first + count - 1`."""

    step_mm: float
    first: int
    count: int


def _runs(steps: np.ndarray, tolerance: float) -> list[Run]:
    runs: list[Run] = []
    for i, size in enumerate(steps.tolist()):
        if runs and abs(size - runs[-1].step_mm) <= tolerance:
            last = runs[-1]
            runs[-1] = Run(last.step_mm, last.first, last.count + 1)
        else:
            runs.append(Run(size, i, 1))
    return runs


def _spacing_problem(runs: list[Run], ordered: list[SliceHeader], step: float) -> tuple[str, Path]:
    """Missing slices (a lone step of whole slices that instance numbers do not bridge) or
    uneven spacing (steps of two or more sizes, e.g. two slice thicknesses in one series)."""
    numbers = [h.instance for h in ordered]
    consecutive = None not in numbers and set(np.abs(np.diff(numbers)).tolist()) == {1}
    for run in runs:
        missing = round(run.step_mm / step) - 1
        whole = missing >= 1 and abs(run.step_mm - (missing + 1) * step) <= 0.1 * step
        if whole and run.count == 1 and not consecutive:
            before = ordered[run.first].file
            return (
                f"missing slice(s): a gap of {run.step_mm:.2f} mm after {before.name} where the "
                f"series steps {step:.2f} mm ({missing} slice(s) missing)",
                ordered[run.first + 1].file,
            )
    parts = [
        f"{run.step_mm:.2f} mm from {ordered[run.first].file.name} to "
        f"{ordered[run.first + run.count].file.name} ({run.count} step(s))"
        for run in runs
    ]
    why = "instance numbers are consecutive" if consecutive else "the steps change size"
    return (
        f"uneven slice spacing, not missing slices ({why}): {', then '.join(parts)}; not "
        "resampled: convert the series to an evenly spaced NIfTI first (e.g. dcm2niix, its "
        "_Eq_ output) and import that",
        ordered[runs[1].first + 1].file,
    )


def _check_instance_numbers(ordered: list[SliceHeader], case: str | None) -> None:
    """A deleted slice at an even spacing shows only as a jump in instance numbers."""
    numbers = [h.instance for h in ordered]
    if any(n is None for n in numbers):
        return
    diffs = np.diff(np.asarray(numbers, dtype=int))
    if not ((diffs > 0).all() or (diffs < 0).all()):
        return  # numbered in another order than space: nothing to conclude
    for i, d in enumerate(diffs):
        if abs(d) > 1:
            raise InputError(
                f"missing slice(s): instance numbers jump from {numbers[i]} to "
                f"{numbers[i + 1]} ({ordered[i].file.name} -> {ordered[i + 1].file.name})",
                case,
                ordered[i + 1].file,
            )


def _as_hu(array: np.ndarray) -> np.ndarray:
    """int16 when the rescaled values are whole numbers in range (the usual CT), else float32."""
    if array.dtype.kind in "iu":
        if array.min() >= np.iinfo(np.int16).min and array.max() <= np.iinfo(np.int16).max:
            return array.astype(np.int16)
        return array.astype(np.int32)
    if np.all(np.mod(array, 1) == 0) and np.abs(array).max() < 32767:
        return array.astype(np.int16)
    return array.astype(np.float32)
