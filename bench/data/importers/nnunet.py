"""nnU-Net raw: `imagesTr/<case>_0000.nii.gz`, `labelsTr/<case>.nii.gz`, `dataset.json`.

One rater (named by `--rater`, default "A"). The label values come from dataset.json's
`labels` (v2 `{"background": 0, "lesion": 1}` or v1 `{"0": "background", ...}`); every
non-background class counts as lesion unless `--lesion-values` says otherwise, and the
nnU-Net `ignore` label never does.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bench.data.importers.common import (
    NNUNET_CHANNEL_SUFFIX,
    ImportOptions,
    LabelValues,
    LayoutScan,
    ScanReport,
    SourceCase,
    files_by_case,
)
from bench.errors import InputError
from bench.io import read_json_object

log = logging.getLogger(__name__)
# What nnU-Net's generate_dataset_json writes when nobody gave a licence (v2, then v1).
PLACEHOLDER_LICENCES = ("Whoever converted this dataset was lazy", "hands off!")


def scan(source: Path, options: ImportOptions) -> LayoutScan:
    spec_path = source / "dataset.json"
    spec = _read_spec(spec_path)
    images_dir, labels_dir = source / "imagesTr", source / "labelsTr"
    for folder in (images_dir, labels_dir):
        if not folder.is_dir():
            raise InputError("folder is missing (not an nnU-Net raw dataset)", file=folder)
    _check_channels(spec, images_dir)
    report = ScanReport(options.skip_invalid)
    if (source / "imagesTs").is_dir():
        report.notice(f"{source / 'imagesTs'}: not used (nnU-Net test images carry no labels)")
    images = files_by_case(images_dir, report, strip=NNUNET_CHANNEL_SUFFIX, what="image")
    labels = files_by_case(labels_dir, report, what="label")
    for case_id, path in sorted(labels.items()):
        if case_id not in images and not report.is_skipped(case_id):
            report.problem(f"label has no image {case_id}_0000 (extra case)", case_id, path)
    cases = []
    for case_id, image in sorted(images.items()):
        if report.is_skipped(case_id):
            continue
        if case_id not in labels:
            report.problem(
                f"image has no label in labelsTr (expected {case_id}.nii.gz)", case_id, image
            )
            continue
        cases.append(SourceCase(case_id, image, {options.rater: labels[case_id]}, origin=image))
    if not cases and not report.skipped:
        raise InputError("no images named <case>_0000.* in imagesTr", file=images_dir)
    expected = spec.get("numTraining")
    found = len(cases) + len({s.case for s in report.skipped})
    if isinstance(expected, int) and expected != found:
        report.notice(
            f"{spec_path}: numTraining is {expected} but {found} case(s) were found "
            "(every file not used is listed)"
        )
    lesion, allowed = _label_values(spec, spec_path)
    description = spec.get("description") or spec.get("name") or source.name
    reference = spec.get("reference") or ""
    return LayoutScan(
        layout="nnunet",
        source_root=source,
        cases=cases,
        raters=[options.rater],
        reference_rater=options.rater,
        label_values=LabelValues.of(options, lesion, allowed),
        source=f"nnU-Net raw dataset '{source.name}': {description}"
        + (f" ({reference})" if reference else ""),
        license=_licence(spec, spec_path, report, options.license),
        default_name=str(spec.get("name") or source.name),
        skipped=report.skipped,
        notices=report.notices,
    )


def _licence(spec: dict[str, Any], path: Path, report: ScanReport, given: str | None) -> str:
    text = str(spec.get("licence") or spec.get("license") or "unknown")
    if text.startswith(PLACEHOLDER_LICENCES) and not given:
        report.notice(
            f"{path}: the licence is nnU-Net's placeholder ({text[:40]}...): recorded as "
            "'unknown' (set it with --license)"
        )
        return "unknown"
    return text


def _read_spec(path: Path) -> dict[str, Any]:
    return read_json_object(path, missing="dataset.json is missing (not an nnU-Net raw dataset)")


def _check_channels(spec: dict[str, Any], images_dir: Path) -> None:
    channels = spec.get("channel_names") or spec.get("modality") or {}
    if len(channels) > 1:
        log.info("dataset.json lists %d channels; importing channel 0 only", len(channels))
    name = str(channels.get("0", "CT")) if isinstance(channels, dict) else "CT"
    if name.upper() not in ("CT", "NCCT"):
        log.warning("channel 0 of %s is %r, not CT: values may not be HU", images_dir, name)


def _label_values(spec: dict[str, Any], path: Path) -> tuple[set[int], set[int]]:
    """(lesion values, all values) from dataset.json's labels, v2 or v1 style."""
    labels = spec.get("labels")
    if not isinstance(labels, dict) or not labels:
        return {1}, {0, 1}
    pairs: list[tuple[str, Any]] = []
    for key, value in labels.items():
        if str(key).lstrip("-").isdigit():  # v1: {"0": "background"}
            pairs.append((str(value), int(key)))
        else:
            pairs.append((str(key), value))
    values: dict[str, int] = {}
    for name, value in pairs:
        if not isinstance(value, int):
            raise InputError(
                f"label {name!r} is a region ({value}); region-based labels are not supported",
                file=path,
            )
        values[name] = value
    allowed = set(values.values())
    lesion = {v for n, v in values.items() if v != 0 and n.lower() != "ignore"}
    return lesion or {1}, allowed
