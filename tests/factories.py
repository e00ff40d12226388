"""Tiny datasets written by the tests themselves (no data in the repository)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.data.dataset import Dataset, write_manifest
from bench.io import Geometry, write_image

TINY_GEOMETRY = Geometry(
    shape_zyx=(4, 12, 10),
    spacing_xyz=(2.0, 2.0, 5.0),
    origin_xyz=(-10.0, -12.0, 0.0),
    direction=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
)


def write_tiny_dataset(
    root: Path,
    n_patients: int = 6,
    second_scans: tuple[int, ...] = (1,),
    raters: tuple[str, ...] = ("A", "B", "C"),
    truth: str | None = None,
    lesion_voxels: Callable[[int], int] | None = None,
    seed: int = 0,
) -> Dataset:
    """A dataset v1 of tiny volumes: patient p gets a cube lesion of a size that varies by p."""
    rng = np.random.default_rng(seed)
    label_sets = (*raters, truth) if truth else raters
    cases = []
    scans = [(p, 0) for p in range(n_patients)] + [(p, 1) for p in second_scans]
    for patient, scan in scans:
        case_id = f"p{patient:03d}" + (f"_s{scan}" if scan else "")
        image = rng.normal(30, 5, TINY_GEOMETRY.shape_zyx).astype(np.int16)
        write_image(image, TINY_GEOMETRY, root / "images" / f"{case_id}.nii.gz")
        size = lesion_voxels(patient) if lesion_voxels else patient % 4
        labels = {}
        for rater in label_sets:
            label = np.zeros(TINY_GEOMETRY.shape_zyx, np.uint8)
            label[1:3, 2 : 2 + size, 2 : 2 + size] = 1
            path = f"labels/{rater}/{case_id}.nii.gz"
            write_image(label, TINY_GEOMETRY, root / path)
            labels[rater] = path
        cases.append(
            {
                "id": case_id,
                "patient": f"p{patient:03d}",
                "scan_index": scan,
                "image": f"images/{case_id}.nii.gz",
                "labels": labels,
            }
        )
    manifest = {
        "name": "tiny",
        "raters": list(raters),
        "reference_rater": raters[0],
        "cases": cases,
        "license": "CC0-1.0",
        "source": "written by the test suite",
    }
    if truth:
        manifest["truth"] = truth
    return write_manifest(root, manifest)
