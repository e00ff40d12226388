"""Writers for tiny datasets in each foreign layout (the tests write their own fixtures).

Volumes are 5 slices of 16 x 16; lesions are boxes whose voxel counts are worked out by hand
in the tests, so expected volumes never come from the code under test.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from bench.io import Geometry, write_image

SHAPE_ZYX = (5, 16, 16)
GEOMETRY = Geometry(
    shape_zyx=SHAPE_ZYX,
    spacing_xyz=(0.8, 0.8, 5.0),
    origin_xyz=(-6.0, -6.0, 10.0),
    direction=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
)
VOXEL_ML = 0.8 * 0.8 * 5.0 / 1000.0
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def ct_volume(seed: int = 0, shape: Sequence[int] = SHAPE_ZYX) -> np.ndarray:
    """Brain-like HU values (int16), different per seed."""
    rng = np.random.default_rng(seed)
    return rng.integers(20, 45, size=tuple(shape)).astype(np.int16)


def box_mask(n_voxels_side: int, shape: Sequence[int] = SHAPE_ZYX, value: int = 1) -> np.ndarray:
    """A 2 x n x n box of `value` (2 * n * n voxels; n = 0 gives an empty mask)."""
    mask = np.zeros(tuple(shape), np.uint8)
    mask[1:3, 4 : 4 + n_voxels_side, 5 : 5 + n_voxels_side] = value
    return mask


def write_nifti(path: Path, array: np.ndarray, geometry: Geometry = GEOMETRY) -> Path:
    write_image(array, geometry, path)
    return path


def ras_affine(geometry: Geometry) -> np.ndarray:
    """The NIfTI (RAS) affine of an ITK (LPS) geometry, worked out by hand: flip x and y."""
    direction = np.asarray(geometry.direction).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = direction @ np.diag(geometry.spacing_xyz)
    affine[:3, 3] = geometry.origin_xyz
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine


def write_nifti_codes(
    path: Path,
    array: np.ndarray,
    qform: Geometry = GEOMETRY,
    sform: Geometry | None = None,
    codes: tuple[int, int] = (1, 1),
) -> Path:
    """A NIfTI written by nibabel with its own qform and sform and their codes, as other
    tools write them (SimpleITK always writes both equal)."""
    import nibabel

    path.parent.mkdir(parents=True, exist_ok=True)
    image = nibabel.Nifti1Image(np.transpose(array, (2, 1, 0)), None)
    image.set_qform(ras_affine(qform), code=codes[0])
    image.set_sform(ras_affine(sform or qform), code=codes[1])
    nibabel.save(image, str(path))
    return path


# --- nnU-Net raw -----------------------------------------------------------------------------


def write_nnunet(root: Path, lesion_sides: dict[str, int], labels: dict | None = None) -> Path:
    """imagesTr/<case>_0000.nii.gz, labelsTr/<case>.nii.gz and dataset.json."""
    for i, (case, side) in enumerate(lesion_sides.items()):
        write_nifti(root / "imagesTr" / f"{case}_0000.nii.gz", ct_volume(i))
        write_nifti(root / "labelsTr" / f"{case}.nii.gz", box_mask(side))
    spec = {
        "name": "Dataset501_Tiny",
        "description": "tiny stroke set",
        "channel_names": {"0": "CT"},
        "labels": labels or {"background": 0, "lesion": 1},
        "numTraining": len(lesion_sides),
        "file_ending": ".nii.gz",
        "licence": "CC-BY-4.0",
    }
    (root / "dataset.json").write_text(json.dumps(spec))
    return root


def write_csv(path: Path, rows: list[Sequence[object]], header: Sequence[str]) -> Path:
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


# --- multi-rater folders ---------------------------------------------------------------------


def write_folders(root: Path, sides: dict[str, dict[str, int]], image_suffix: str = "") -> Path:
    """images/<case>.nii.gz and labels/<rater>/<case>.nii.gz; sides[rater][case] = box side."""
    cases = sorted({case for per_rater in sides.values() for case in per_rater})
    for i, case in enumerate(cases):
        write_nifti(root / "images" / f"{case}{image_suffix}.nii.gz", ct_volume(i))
    for rater, per_case in sides.items():
        for case, side in per_case.items():
            write_nifti(root / "labels" / rater / f"{case}.nii.gz", box_mask(side))
    return root


# --- DICOM -----------------------------------------------------------------------------------


def write_dicom_series(
    folder: Path,
    hu: np.ndarray,
    pixel_spacing_xy: tuple[float, float] = (0.8, 0.6),
    step_mm: float = 5.0,
    origin: tuple[float, float, float] = (-6.0, -4.0, 10.0),
    tilt_deg: float = 0.0,
    drop: Sequence[int] = (),
    positions_z: Sequence[float] | None = None,
    instances: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
    intercept: float = -1024.0,
    series_uid: str = "1.2.826.0.1.3680043.2.1125.7.1",
) -> list[Path]:
    """One CT series, slice k (of `hu`, z order) at z = origin_z + k * step_mm.

    A tilted gantry keeps the table moving along z while the slice plane is rotated about x
    by `tilt_deg`: the column direction becomes (0, cos t, -sin t), as scanners record it.
    The writer stores (HU - intercept) and the rescale intercept, so a reader that ignored
    the intercept would be off by 1024.
    """
    folder.mkdir(parents=True, exist_ok=True)
    t = math.radians(tilt_deg)
    orientation = (1.0, 0.0, 0.0, 0.0, math.cos(t), -math.sin(t))
    paths = []
    for k in range(hu.shape[0]):
        if k in drop:
            continue
        z = positions_z[k] if positions_z is not None else origin[2] + k * step_mm
        image = sitk.GetImageFromArray(hu[k].astype(np.int16))
        image.SetSpacing(pixel_spacing_xy)
        tags = {
            "0008|0016": CT_IMAGE_STORAGE,
            "0008|0018": f"{series_uid}.{k + 1}",
            "0008|0060": "CT",
            "0010|0020": folder.name,
            "0020|000d": series_uid.rsplit(".", 1)[0],
            "0020|000e": series_uid,
            "0020|0013": str(instances[k] if instances is not None else k + 1),
            "0020|0032": "\\".join(f"{v:.4f}" for v in (origin[0], origin[1], z)),
            "0020|0037": "\\".join(f"{v:.6f}" for v in orientation),
            "0028|1052": f"{intercept:g}",
            "0028|1053": "1",
            "0018|0050": f"{step_mm:g}",
            "0018|1120": f"{tilt_deg:g}",
        }
        for key, value in tags.items():
            image.SetMetaData(key, value)
        name = names[k] if names is not None else f"{k + 1:03d}.dcm"
        writer = sitk.ImageFileWriter()
        writer.KeepOriginalImageUIDOn()
        writer.SetFileName(str(folder / name))
        writer.Execute(image)
        paths.append(folder / name)
    return paths


def dicom_geometry(
    shape_zyx: Sequence[int] = SHAPE_ZYX,
    pixel_spacing_xy: tuple[float, float] = (0.8, 0.6),
    step_mm: float = 5.0,
    origin: tuple[float, float, float] = (-6.0, -4.0, 10.0),
) -> Geometry:
    """The grid an untilted `write_dicom_series` lies on, worked out from its arguments."""
    return Geometry(
        shape_zyx=tuple(shape_zyx),
        spacing_xyz=(*pixel_spacing_xy, step_mm),
        origin_xyz=origin,
        direction=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
    )


def write_png(path: Path, array: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)
    return path
