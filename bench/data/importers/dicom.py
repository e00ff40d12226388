"""DICOM: `images/<case>/` holds one CT series per case; masks are NIfTI on the same grid.

Masks sit in `labels/<rater>/<case>.nii.gz` (several raters) or `labels/<case>.nii.gz` (one
rater, `--rater`). The series is converted to NIfTI in HU (see `dicom_series`); masks are
checked against the converted grid. A mask that differs from it only by axis order or sign (as
converters such as dcm2niix store it) is reoriented losslessly; any other grid is an error.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from bench.data.importers.common import (
    ImportOptions,
    LayoutScan,
    ScanReport,
    visible_dirs,
    visible_files,
)
from bench.data.importers.dicom_series import read_series
from bench.data.importers.folders import scan_with_rater_folders
from bench.errors import InputError


def scan(source: Path, options: ImportOptions) -> LayoutScan:
    images_dir = source / (options.images_dir or "images")
    if not images_dir.is_dir():
        raise InputError("DICOM folder is missing", file=images_dir)
    series = {p.name: p for p in visible_dirs(images_dir)}
    if not series:
        raise InputError("no case folders (one DICOM series per case folder)", file=images_dir)
    report = ScanReport(options.skip_invalid)
    for path in visible_files(images_dir):
        report.notice(f"{path}: not used (a series is a case folder; files beside them are not)")
    return scan_with_rater_folders(
        source,
        options,
        report,
        layout="dicom",
        images={
            case_id: partial(read_series, folder, case_id, options.allow_tilt)
            for case_id, folder in series.items()
        },
        what=f"DICOM series with NIfTI masks at '{source.name}'",
        origins=series,
        reorient_labels=True,
    )
