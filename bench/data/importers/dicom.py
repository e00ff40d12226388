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
    LabelValues,
    LayoutScan,
    SourceCase,
    files_by_case,
    rater_folders,
    reference_of,
)
from bench.data.importers.dicom_series import read_series
from bench.data.importers.folders import check_no_extra_labels, match_labels
from bench.errors import InputError


def scan(source: Path, options: ImportOptions) -> LayoutScan:
    images_dir = source / (options.images_dir or "images")
    if not images_dir.is_dir():
        raise InputError("DICOM folder is missing", file=images_dir)
    series = {p.name: p for p in sorted(images_dir.iterdir()) if p.is_dir() and p.name[0] != "."}
    if not series:
        raise InputError("no case folders (one DICOM series per case folder)", file=images_dir)
    folders = rater_folders(source / (options.labels_dir or "labels"), options)
    labels = {rater: files_by_case(folder, what="mask") for rater, folder in folders.items()}
    cases = [
        SourceCase(
            case_id,
            partial(read_series, folder, case_id, options.allow_tilt),
            match_labels(case_id, labels, folders),
            origin=folder,
        )
        for case_id, folder in series.items()
    ]
    check_no_extra_labels(labels, series)
    raters = list(folders)
    return LayoutScan(
        layout="dicom",
        source_root=source,
        cases=cases,
        raters=raters,
        reference_rater=reference_of(raters, options),
        label_values=LabelValues.of(options),
        source=f"DICOM series with NIfTI masks at '{source.name}' (raters: "
        + ", ".join(f"{r} = {f.name}" for r, f in folders.items())
        + ")",
        license="unknown",
        default_name=source.name,
        reorient_labels=True,
    )
