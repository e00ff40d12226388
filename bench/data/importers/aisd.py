"""AISD (Liang et al., MICCAI 2021; github.com/GriffinLiang/AISD): DICOM CT + PNG slice masks.

The layout the dataset's archives unpack to (dicom-0..3.tar.gz, mask.zip, image.zip):

    SOURCE/dicom-<n>/<case>/CT/*.dcm     the NCCT series (DWI/ or MRI/ next to CT/ is ignored)
    SOURCE/mask/<case>/000.png ...       one PNG per CT slice, values 0-5
    SOURCE/image/<case>/*.png            windowed previews: ignored (the DICOM holds the HU)

Mask values, as the authors define them: 1 remote infarct, 2 clear acute infarct, 3 blurred
acute infarct, 4 acute infarct invisible on CT, 5 infarct. The authors advise {1, 2, 3, 5} as
lesion (GriffinLiang/AISD issue #2, #17), the default here (`--lesion-values` changes it).

The k-th PNG (natural order of names) is the k-th DICOM file (natural order of names), placed
at that file's position in the series: the masks were exported file by file. A case whose PNG
count differs from its slice count (e.g. 0226134: 26 masks, 16 slices) is skipped and listed.
dicom-3 re-releases cases that were missing or broken in dicom-0; a case found in several
dicom-<n> folders is taken from the highest n.
"""

from __future__ import annotations

import logging
import re
from functools import partial
from pathlib import Path

import numpy as np

from bench.data.importers.common import (
    ImportOptions,
    LabelValues,
    LayoutScan,
    PlacedImage,
    ScanReport,
    SkipCase,
    Skipped,
    SourceCase,
    natural_key,
    visible_dirs,
    visible_files,
)
from bench.data.importers.dicom_series import read_series
from bench.errors import InputError

log = logging.getLogger(__name__)

LESION_VALUES = (1, 2, 3, 5)
MASK_VALUES = (0, 1, 2, 3, 4, 5)
LICENSE = (
    "AISD terms: free for non-commercial research, teaching and publication "
    "(github.com/GriffinLiang/AISD)"
)


def scan(source: Path, options: ImportOptions) -> LayoutScan:
    report = ScanReport(options.skip_invalid)
    series = _find_series(source, report)
    masks_dir = source / (options.labels_dir or "mask")
    if not masks_dir.is_dir():
        raise InputError("mask folder is missing (unpack mask.zip here)", file=masks_dir)
    masks = {p.name: p for p in visible_dirs(masks_dir)}
    values = LabelValues.of(options, LESION_VALUES, MASK_VALUES)
    cases, skipped = [], report.skipped
    for case_id, (ct_dir, release) in sorted(series.items()):
        if case_id not in masks:
            skipped.append(Skipped(case_id, "no mask folder", str(masks_dir / case_id)))
            continue
        cases.append(
            SourceCase(
                case_id,
                partial(read_series, ct_dir, case_id, options.allow_tilt),
                {options.rater: partial(load_masks, masks[case_id], case_id, values.allowed)},
                origin=ct_dir,
                meta={"aisd_release": release},
            )
        )
    for case_id in sorted(set(masks) - set(series) - {s.case for s in skipped}):
        skipped.append(
            Skipped(case_id, "masks but no DICOM series (dicom-3 not unpacked?)", str(masks_dir))
        )
    return LayoutScan(
        layout="aisd",
        source_root=source,
        cases=cases,
        raters=[options.rater],
        reference_rater=options.rater,
        label_values=values,
        source="AISD acute ischemic stroke dataset (Liang et al., MICCAI 2021, "
        "github.com/GriffinLiang/AISD): NCCT within 24 h of onset, lesions contoured on "
        f"NCCT with DWI as reference; lesion = mask values {sorted(values.lesion)}",
        license=LICENSE,
        default_name="aisd",
        skipped=skipped,
        notices=report.notices,
    )


def _find_series(source: Path, report: ScanReport) -> dict[str, tuple[Path, str]]:
    """case -> (its CT folder, the dicom-<n> release it came from); the highest n wins.

    A case without a usable CT folder in any release is a problem of that case.
    """
    releases = sorted(
        (p for p in visible_dirs(source) if re.fullmatch(r"dicom(-\d+)?", p.name)),
        key=natural_key,
    )
    if not releases:
        raise InputError("no dicom-<n> folders (unpack dicom-*.tar.gz here)", file=source)
    found: dict[str, tuple[Path, str]] = {}
    unusable: dict[str, tuple[str, Path]] = {}
    for release in releases:
        for case_dir in visible_dirs(release):
            ct_dir = case_dir / "CT"
            if not ct_dir.is_dir() or not visible_files(ct_dir, recursive=True):
                why = "no CT folder" if not ct_dir.is_dir() else "the CT folder is empty"
                unusable[case_dir.name] = (why, ct_dir)
                continue
            if case_dir.name in found:
                log.info(
                    "case %s: taking %s over %s",
                    case_dir.name,
                    release.name,
                    found[case_dir.name][1],
                )
            found[case_dir.name] = (ct_dir, release.name)
    for case_id, (why, ct_dir) in sorted(unusable.items()):
        if case_id not in found:
            report.problem(f"{why} (no CT series in any dicom-<n> folder)", case_id, ct_dir)
    return found


def load_masks(
    mask_dir: Path, case: str, allowed: frozenset[int], placed: PlacedImage
) -> np.ndarray:
    """Stack the PNG slices onto the series grid (stored values, 0-5)."""
    pngs = sorted(
        (p for p in visible_files(mask_dir) if p.suffix.lower() == ".png"), key=natural_key
    )
    n_slices = len(placed.slice_files)
    if len(pngs) != n_slices:
        raise SkipCase(f"{len(pngs)} mask slices but {n_slices} DICOM slices")
    rows_cols = tuple(placed.geometry.shape_zyx[1:])
    z_of_file = {path: z for z, path in enumerate(placed.slice_files)}
    by_name = sorted(placed.slice_files, key=natural_key)
    volume = np.zeros(placed.geometry.shape_zyx, dtype=np.uint8)
    for png, dicom_file in zip(pngs, by_name, strict=True):
        array = read_png(png, case)
        if array.shape != rows_cols:
            raise InputError(
                f"mask slice is {array.shape} (rows, columns) but the DICOM slice is {rows_cols}",
                case,
                png,
            )
        outside = sorted(set(np.unique(array).tolist()) - allowed)
        if outside:
            raise InputError(
                f"mask value(s) {outside[:6]} outside the expected set {sorted(allowed)}",
                case,
                png,
            )
        volume[z_of_file[dicom_file]] = array
    return volume


def read_png(path: Path, case: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            array = np.asarray(image)
    except (OSError, UnidentifiedImageError) as error:
        raise InputError("cannot be read as PNG", case, path) from error
    if array.ndim == 3:  # RGB(A) export of a grey mask: channels must agree
        if not (array[..., :3] == array[..., :1]).all():
            raise InputError("mask PNG is in colour; expected grey values 0-5", case, path)
        array = array[..., 0]
    return array
