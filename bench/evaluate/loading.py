"""Read masks from NIfTI with the checks the evaluator relies on, one clear line per problem.

Spacing always comes from the file header (SimpleITK), never from the user, and is handed on
in array-axis order (`Geometry.spacing_zyx_mm`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.errors import InputError
from bench.evaluate.pair import check_binary
from bench.io import Geometry, count_non_finite, read_image

NIFTI_SUFFIXES = (".nii.gz", ".nii")


def case_name(path: Path) -> str:
    """File name without its NIfTI suffix: `case_001.nii.gz` -> `case_001`."""
    for suffix in NIFTI_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


def nifti_files(folder: Path) -> dict[str, Path]:
    """Case name -> NIfTI file in a folder (not recursive). Hidden files are skipped: they
    are the harness's temporaries (`bench.io.atomic_path`), which a killed writer leaves."""
    if not folder.is_dir():
        raise InputError("is not a folder", file=folder)
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.name.endswith(NIFTI_SUFFIXES) and not p.name.startswith(".")
    )
    found: dict[str, Path] = {}
    for path in files:
        name = case_name(path)
        if name in found:
            raise InputError(f"two files for case {name} ({found[name].name})", name, path)
        found[name] = path
    return found


def read_mask(path: Path, case: str | None = None) -> tuple[np.ndarray, Geometry]:
    """A binary (z, y, x) mask and its geometry; InputError naming the file otherwise."""
    array, geometry = read_image(path, case)
    if array.ndim != 3:
        raise InputError(f"is {array.ndim}D, expected a 3D mask", case, path)
    if np.issubdtype(array.dtype, np.floating) and count_non_finite(path):
        # SimpleITK reads NaN in a NIfTI file as 0: ask nibabel for the stored values.
        raise InputError("mask has NaN/Inf values", case, path)
    check_binary(array, "mask", case, path)
    return array, geometry


def grid_mismatch(expected: Geometry, actual: Geometry, expected_name: str) -> str | None:
    """Describe how `actual` lies on a different grid than `expected`, or None if it does not."""
    return expected.mismatch(actual, expected_name)


def check_grid(
    expected: Geometry,
    actual: Geometry,
    expected_name: str,
    case: str | None,
    path: Path,
    same_grid: bool = False,
) -> None:
    """InputError unless `actual` lies on `expected`'s grid.

    `same_grid`: the caller vouches that the file lies on the expected voxel grid whatever
    its origin and direction say (tools that drop the header write (-100, -100, -100) and
    the identity); shape and spacing must still match.
    """
    headerless = replace(actual, origin_xyz=expected.origin_xyz, direction=expected.direction)
    problem = grid_mismatch(expected, headerless if same_grid else actual, expected_name)
    if problem and not same_grid and grid_mismatch(expected, headerless, expected_name) is None:
        problem += (
            f"; if the file lost its header but lies on the {expected_name}'s voxel grid, "
            f"--same-grid scores it with the {expected_name}'s header"
        )
    if problem:
        raise InputError(problem, case, path)
