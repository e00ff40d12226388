"""A tiny synthetic head dataset for `bench submission check` (written in a second or two).

Left-right symmetric heads (skull, brain, ventricles) with a small yaw each, and a hypodense
ellipsoid in one hemisphere on most cases: enough for the mirror's registration to work and for
any method to train and predict on the smoke profile. It proves that a submission runs, not
that it is good.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.data.dataset import Dataset, write_manifest
from bench.io import Geometry, write_image
from bench.splits import make_split, write_split

SHAPE_ZYX = (12, 40, 48)
SPACING_XYZ = (4.0, 4.0, 6.0)


def _head(rng: np.random.Generator, lesion: bool) -> tuple[np.ndarray, np.ndarray]:
    z, y, x = np.meshgrid(*[np.arange(n, dtype=float) for n in SHAPE_ZYX], indexing="ij")
    centre = (np.array(SHAPE_ZYX) - 1) / 2
    mm = [(a - c) * s for a, c, s in zip((z, y, x), centre, SPACING_XYZ[::-1], strict=True)]
    yaw = np.radians(rng.uniform(-10, 10))
    hx = mm[2] * np.cos(yaw) + mm[1] * np.sin(yaw)
    hy = -mm[2] * np.sin(yaw) + mm[1] * np.cos(yaw)
    r = np.sqrt((hx / 70) ** 2 + (hy / 76) ** 2 + (mm[0] / 40) ** 2)
    image = np.where(r < 1, 900.0, -1000.0)
    image[r < 0.88] = 34.0
    for side in (-1, 1):
        image[np.sqrt(((hx - side * 12) / 6) ** 2 + (hy / 20) ** 2 + (mm[0] / 14) ** 2) < 1] = 6.0
    mask = np.zeros(SHAPE_ZYX, np.uint8)
    if lesion:
        side = rng.choice([-1.0, 1.0])
        rl = np.sqrt(((hx - side * 35) / 14) ** 2 + (hy / 20) ** 2 + (mm[0] / 14) ** 2)
        mask[(rl < 1) & (r < 0.88)] = 1
        image -= 20.0 * mask
    image += rng.normal(0, 3, image.shape) * (image > -500)
    return np.round(image).astype(np.int16), mask


def write_check_dataset(root: Path, n_patients: int = 6, seed: int = 0) -> Dataset:
    """A bench dataset v1 with 2 folds; raters A and B agree."""
    rng = np.random.default_rng(seed)
    shape = np.array(SHAPE_ZYX[::-1], float)
    geometry = Geometry(
        SHAPE_ZYX,
        SPACING_XYZ,
        tuple(-(shape - 1) / 2 * np.array(SPACING_XYZ)),
        (1, 0, 0, 0, 1, 0, 0, 0, 1),
    )
    cases = []
    for patient in range(n_patients):
        case_id = f"c{patient:03d}"
        image, mask = _head(rng, lesion=patient % 3 != 2)
        write_image(image, geometry, root / "images" / f"{case_id}.nii.gz")
        labels = {}
        for rater in ("A", "B"):
            labels[rater] = f"labels/{rater}/{case_id}.nii.gz"
            write_image(mask, geometry, root / labels[rater])
        cases.append(
            {
                "id": case_id,
                "patient": case_id,
                "scan_index": 0,
                "image": f"images/{case_id}.nii.gz",
                "labels": labels,
            }
        )
    dataset = write_manifest(
        root,
        {
            "name": "submission-check",
            "raters": ["A", "B"],
            "reference_rater": "A",
            "cases": cases,
            "license": "CC0-1.0",
            "source": "bench submission check",
        },
    )
    write_split(dataset, make_split(dataset, n_folds=2, seed=seed))
    return dataset
