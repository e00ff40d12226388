"""Multi-rater folders: `images/<case>.nii.gz` and `labels/<rater>/<case>.nii.gz`.

Rater names are the folder names, or `--raters A=reader1,B=reader2` to pick, order and rename
them; the first is the reference unless `--reference-rater` says otherwise. A `labels/` folder
holding masks directly is one rater (`--rater`). Images named `<case>_0000.*` (nnU-Net style)
are matched to labels named `<case>.*`. Every rater must label every case.
"""

from __future__ import annotations

from pathlib import Path

from bench.data.importers.common import (
    NNUNET_CHANNEL_SUFFIX,
    ImageLoader,
    ImportOptions,
    LabelLoader,
    LabelValues,
    LayoutScan,
    ScanReport,
    SourceCase,
    files_by_case,
    rater_folders,
    reference_of,
)
from bench.errors import InputError


def scan(source: Path, options: ImportOptions) -> LayoutScan:
    images_dir = source / (options.images_dir or "images")
    if not images_dir.is_dir():
        raise InputError("image folder is missing", file=images_dir)
    report = ScanReport(options.skip_invalid)
    images = files_by_case(images_dir, report, what="image")
    if images and all(c.endswith(NNUNET_CHANNEL_SUFFIX) for c in images):
        images = {c[: -len(NNUNET_CHANNEL_SUFFIX)]: p for c, p in images.items()}
    if not images and not report.skipped:
        raise InputError("no images (NIfTI, .mha or .nrrd files)", file=images_dir)
    return scan_with_rater_folders(
        source,
        options,
        report,
        layout="folders",
        images=dict(sorted(images.items())),
        what=f"multi-rater folders at '{source.name}'",
    )


def scan_with_rater_folders(
    source: Path,
    options: ImportOptions,
    report: ScanReport,
    layout: str,
    images: dict[str, Path | ImageLoader],
    what: str,
    origins: dict[str, Path] | None = None,
    reorient_labels: bool = False,
) -> LayoutScan:
    """The scan of any layout whose masks lie in `labels/<rater>/<case>.*` beside its images.

    `images` maps case id to an image file or a loader (DICOM); `origins` names the source
    file or folder of each case where it is not the image itself.
    """
    folders = rater_folders(source / (options.labels_dir or "labels"), options)
    labels = {
        rater: files_by_case(folder, report, what="mask") for rater, folder in folders.items()
    }
    check_no_extra_labels(labels, images, report)
    cases = []
    for case_id, image in images.items():
        found = match_labels(case_id, labels, folders, report)
        if found is not None and not report.is_skipped(case_id):
            origin = (origins or {}).get(case_id, image)
            cases.append(SourceCase(case_id, image, found, origin=origin))
    raters = list(folders)
    return LayoutScan(
        layout=layout,
        source_root=source,
        cases=cases,
        raters=raters,
        reference_rater=reference_of(raters, options),
        label_values=LabelValues.of(options),
        source=f"{what} (raters: " + ", ".join(f"{r} = {f.name}" for r, f in folders.items()) + ")",
        license="unknown",
        default_name=source.name,
        skipped=report.skipped,
        notices=report.notices,
        reorient_labels=reorient_labels,
    )


def match_labels(
    case_id: str,
    labels: dict[str, dict[str, Path]],
    folders: dict[str, Path],
    report: ScanReport,
) -> dict[str, Path | LabelLoader] | None:
    """Each rater's mask for one case; a missing one is a problem naming the expected file."""
    found: dict[str, Path | LabelLoader] = {}
    for rater, files in labels.items():
        if case_id not in files:
            expected = folders[rater] / f"{case_id}.nii.gz"
            report.problem(f"rater {rater} has no mask for this case", case_id, expected)
            return None
        found[rater] = files[case_id]
    return found


def check_no_extra_labels(
    labels: dict[str, dict[str, Path]], cases: dict[str, object], report: ScanReport
) -> None:
    for rater, files in labels.items():
        for case_id, path in sorted(files.items()):
            if case_id not in cases and not report.is_skipped(case_id):
                report.problem(f"rater {rater} mask has no image (extra case)", case_id, path)
