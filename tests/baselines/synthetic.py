"""Synthetic head CTs big enough for nnU-Net (its planner and U-Net need > 4x12x10 voxels).

A left-right symmetric head (skull, brain, two ventricles) in Hounsfield units, posed in the
scanner with a per-case yaw, roll and shift (so a plain flip is not a mirror), with a
hypodense ellipsoid lesion in one hemisphere on most cases. Small enough (16x48x56) that
nnU-Net plans, preprocesses, trains and predicts in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.data.dataset import Dataset, write_manifest
from bench.io import Geometry, write_image
from bench.splits import make_split, write_split

SHAPE_ZYX = (16, 48, 56)  # 56: MONAI and nnU-Net place x windows differently
SPACING_XYZ = (3.0, 3.0, 6.0)
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def centred_geometry(shape_zyx=SHAPE_ZYX, spacing_xyz=SPACING_XYZ) -> Geometry:
    shape_xyz = np.array(shape_zyx[::-1], float)
    origin = -(shape_xyz - 1) / 2 * np.array(spacing_xyz)
    return Geometry(tuple(shape_zyx), tuple(spacing_xyz), tuple(float(v) for v in origin), IDENTITY)


@dataclass(frozen=True)
class Pose:
    yaw_deg: float = 0.0  # rotation in the axial plane
    roll_deg: float = 0.0  # tilt about the antero-posterior axis
    shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)  # (x, y, z)


@dataclass(frozen=True)
class Lesion:
    centre_mm: tuple[float, float, float]  # (x, y, z) in head coordinates
    radii_mm: tuple[float, float, float]
    drop_hu: float = 24.0


def _rotation(pose: Pose) -> np.ndarray:
    yaw, roll = np.radians(pose.yaw_deg), np.radians(pose.roll_deg)
    rz = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    ry = np.array([[np.cos(roll), 0, np.sin(roll)], [0, 1, 0], [-np.sin(roll), 0, np.cos(roll)]])
    return rz @ ry


def _inside(points: np.ndarray, centre, radii) -> np.ndarray:
    """Normalised ellipsoid radius of every point (< 1 inside)."""
    return np.sqrt(sum(((points[..., i] - centre[i]) / radii[i]) ** 2 for i in range(3)))


def head_volume(
    geometry: Geometry,
    pose: Pose,
    lesion: Lesion | None,
    rng: np.random.Generator | None = None,
    noise_hu: float = 4.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(image int16 HU, lesion mask uint8), both (z, y, x) on `geometry` (identity direction)."""
    z, y, x = np.meshgrid(*[np.arange(n) for n in geometry.shape_zyx], indexing="ij")
    scanner = np.stack([x, y, z], -1) * np.array(geometry.spacing_xyz) + np.array(
        geometry.origin_xyz
    )
    head = (scanner - np.array(pose.shift_mm)) @ _rotation(pose)  # inverse rotation, row vectors
    r_head = _inside(head, (0, 0, 0), (50.0, 60.0, 38.0))
    image = np.full(geometry.shape_zyx, -1000.0)
    image[r_head < 1.0] = 900.0  # skull
    image[r_head < 0.88] = 36.0  # grey matter
    image[r_head < 0.6] = 28.0  # white matter
    for side in (-1, 1):  # ventricles, symmetric about the mid-sagittal plane
        image[_inside(head, (side * 9.0, 6.0, 4.0), (5.0, 16.0, 10.0)) < 1.0] = 6.0
    image[_inside(head, (0.0, -38.0, -6.0), (9.0, 7.0, 8.0)) < 1.0] = 12.0  # a midline cistern
    mask = np.zeros(geometry.shape_zyx, np.uint8)
    if lesion is not None:
        r = _inside(head, lesion.centre_mm, lesion.radii_mm)
        brain = r_head < 0.88
        image -= lesion.drop_hu * np.clip(1.5 - r, 0, 1) * brain  # soft edge
        mask[(r < 1.0) & brain] = 1
    if rng is not None and noise_hu:
        image += rng.normal(0, noise_hu, image.shape) * (image > -500)
    return np.round(image).astype(np.int16), mask


def random_case(rng: np.random.Generator, with_lesion: bool) -> tuple[Pose, Lesion | None]:
    pose = Pose(
        yaw_deg=float(rng.uniform(-12, 12)),
        roll_deg=float(rng.uniform(-4, 4)),
        shift_mm=(float(rng.uniform(-6, 6)), float(rng.uniform(-6, 6)), 0.0),
    )
    if not with_lesion:
        return pose, None
    side = rng.choice([-1.0, 1.0])
    lesion = Lesion(
        centre_mm=(side * rng.uniform(20, 30), rng.uniform(-15, 15), rng.uniform(-8, 8)),
        radii_mm=(rng.uniform(12, 16), rng.uniform(15, 20), rng.uniform(10, 14)),
    )
    return pose, lesion


def write_head_dataset(
    root: Path,
    n_patients: int = 8,
    second_scans: tuple[int, ...] = (1,),
    n_folds: int = 2,
    seed: int = 0,
    empty_every: int = 4,
    shape_zyx: tuple[int, int, int] = SHAPE_ZYX,
    spacing_xyz: tuple[float, float, float] = SPACING_XYZ,
) -> Dataset:
    """A dataset v1 of synthetic heads with its split written; raters A, B, C agree."""
    rng = np.random.default_rng(seed)
    geometry = centred_geometry(shape_zyx, spacing_xyz)
    cases = []
    scans = [(p, 0) for p in range(n_patients)] + [(p, 1) for p in second_scans]
    for patient, scan in scans:
        case_id = f"h{patient:03d}" + (f"_s{scan}" if scan else "")
        pose, lesion = random_case(rng, with_lesion=patient % empty_every != empty_every - 1)
        image, mask = head_volume(geometry, pose, lesion, rng)
        write_image(image, geometry, root / "images" / f"{case_id}.nii.gz")
        labels = {}
        for rater in ("A", "B", "C"):
            path = f"labels/{rater}/{case_id}.nii.gz"
            write_image(mask, geometry, root / path)
            labels[rater] = path
        cases.append(
            {
                "id": case_id,
                "patient": f"h{patient:03d}",
                "scan_index": scan,
                "image": f"images/{case_id}.nii.gz",
                "labels": labels,
            }
        )
    dataset = write_manifest(
        root,
        {
            "name": "synthetic-heads",
            "raters": ["A", "B", "C"],
            "reference_rater": "A",
            "cases": cases,
            "license": "CC0-1.0",
            "source": "written by the test suite",
        },
    )
    write_split(dataset, make_split(dataset, n_folds=n_folds, seed=seed))
    return dataset
