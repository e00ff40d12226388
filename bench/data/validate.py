"""Full validation of a dataset: every file read, every problem reported on its own line."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bench.data.dataset import (
    MANIFEST_NAME,
    Dataset,
    case_files,
    compute_content_sha256,
)
from bench.errors import InputError, Problem
from bench.io import Geometry, check_complete, count_non_finite, read_image

log = logging.getLogger(__name__)
NIFTI_SUFFIXES = (".nii.gz", ".nii")


def validate_dataset(dataset: Dataset, progress: bool = False) -> list[Problem]:
    """Read every image and label; return all problems found (an empty list means clean)."""
    problems: list[Problem] = []
    for case in tqdm(dataset.cases, desc="validate", unit="case", disable=not progress):
        problems += _case_problems(dataset, case.id)
    problems += _extra_file_problems(dataset)
    if not problems and dataset.content_sha256 is not None:
        actual = compute_content_sha256(dataset.root, case_files(dataset))
        if actual != dataset.content_sha256:
            problems.append(
                Problem(
                    "content_sha256 does not match the case files (a file changed after the "
                    "manifest was written)",
                    file=dataset.root / MANIFEST_NAME,
                )
            )
    return problems


def _case_problems(dataset: Dataset, case_id: str) -> list[Problem]:
    case = dataset.case(case_id)
    try:
        image, geometry = read_image(case.image, case.id)
        check_complete(case.image, case.id)
    except InputError as error:
        return [error.finding]
    problems = _image_problems(image, geometry, case.id, case.image)
    try:
        n_bad = 0 if problems else count_non_finite(case.image)
    except InputError as error:
        return [*problems, Problem(error.finding.problem, case.id, case.image)]
    if n_bad:
        problems.append(Problem(f"image has {n_bad} NaN/Inf voxel(s)", case.id, case.image))
    for rater in dataset.label_sets:
        path = case.labels[rater]
        try:
            label, label_geometry = read_image(path, case.id)
            check_complete(path, case.id)
        except InputError as error:
            problems.append(error.finding)
            continue
        if mismatch := geometry.mismatch(label_geometry):
            problems.append(Problem(f"rater {rater} label: {mismatch}", case.id, path))
        elif count_non_finite(path):
            problems.append(Problem(f"rater {rater} label has NaN/Inf values", case.id, path))
        elif not _is_binary(label):
            values = np.unique(label)[:6].tolist()
            problems.append(
                Problem(f"rater {rater} label is not binary: values {values}", case.id, path)
            )
    return problems


def _image_problems(image: np.ndarray, geometry: Geometry, case: str, path: Path) -> list[Problem]:
    if image.ndim != 3:
        return [Problem(f"image must be 3D, got {image.ndim}D of shape {image.shape}", case, path)]
    if any(s <= 0 for s in geometry.spacing_xyz):
        return [Problem(f"image spacing {geometry.spacing_xyz} is not positive", case, path)]
    return []


def _is_binary(label: np.ndarray) -> bool:
    if label.dtype == bool:
        return True
    return bool(np.isin(label, (0, 1)).all())


def _extra_file_problems(dataset: Dataset) -> list[Problem]:
    """NIfTI files under images/ or labels/ that no case names: an extra, unlisted case."""
    listed = {path.resolve() for path in case_files(dataset)}
    problems = []
    for folder in (dataset.root / "images", dataset.root / "labels"):
        for path in sorted(_nifti_files(folder.rglob("*") if folder.is_dir() else ())):
            if path.resolve() not in listed:
                problems.append(
                    Problem("file is not listed in the manifest (extra case?)", file=path)
                )
    return problems


def _nifti_files(paths: Iterable[Path]) -> Iterable[Path]:
    return (p for p in paths if p.is_file() and p.name.endswith(NIFTI_SUFFIXES))
