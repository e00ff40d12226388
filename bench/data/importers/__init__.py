"""Importers: other dataset layouts in, dataset v1 out (see docs/data.md).

Each layout module has one function, `scan(source, options) -> LayoutScan`, that finds the
cases without converting anything; `build.build_dataset` then links or converts the files,
validates the result with the foundation's validator and writes the split. Layouts are listed
here as lazy "module:function" entries so that `bench data import --help` imports nothing.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from bench.errors import InputError

if TYPE_CHECKING:  # SimpleITK and numpy load only when an import runs
    from bench.data.importers.build import ImportResult
    from bench.data.importers.common import ImportOptions

LAYOUTS: dict[str, tuple[str, str]] = {
    "nnunet": (
        "bench.data.importers.nnunet:scan",
        "nnU-Net raw: imagesTr/<case>_0000.nii.gz, labelsTr/<case>.nii.gz, dataset.json",
    ),
    "folders": (
        "bench.data.importers.folders:scan",
        "images/<case>.nii.gz plus labels/<rater>/<case>.nii.gz, one folder per rater",
    ),
    "dicom": (
        "bench.data.importers.dicom:scan",
        "images/<case>/ (one DICOM series each) plus NIfTI masks in labels/[<rater>/]",
    ),
    "aisd": (
        "bench.data.importers.aisd:scan",
        "AISD: dicom-<n>/<case>/CT/*.dcm plus mask/<case>/*.png (values 1-5)",
    ),
    "isles24": (
        "bench.data.importers.isles24:scan",
        "ISLES'24: raw_data/sub-*/ses-01/*_ncct.nii.gz, derivatives/.../ses-02/*_lesion-msk",
    ),
}


def import_dataset(
    layout: str, source: str | Path, out: str | Path, options: ImportOptions
) -> ImportResult:
    """Import `source` (in `layout`) into a dataset v1 at `out`; returns an ImportResult."""
    from bench.data.importers.build import build_dataset

    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r} (one of {', '.join(LAYOUTS)})")
    source = Path(source).resolve()
    if not source.is_dir():
        raise InputError("source folder is missing", file=source)
    module_name, _, attr = LAYOUTS[layout][0].partition(":")
    scan = getattr(importlib.import_module(module_name), attr)(source, options)
    return build_dataset(scan, Path(out), options)


__all__ = ["LAYOUTS", "import_dataset"]
