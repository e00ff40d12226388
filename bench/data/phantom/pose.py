"""Where the head lies in the scanner and how it differs from the template.

A patient has a head shape (size, smooth elastic deformation, ventricle enlargement); each
scan places that head with its own rigid pose. Both are composed into one map from scanner
millimetres (LPS, the image's physical space) to template millimetres (MNI, RAS) so every
output voxel is interpolated once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

# Scanner LPS -> MNI RAS flips x and y.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
# Roughly the middle of the head in MNI space (x, y); z comes from the profile's slab centre.
HEAD_CENTER_XY_MNI = (0.0, -18.0)
ELASTIC_LATTICE_MM = 12.0


@dataclass(frozen=True)
class HeadShape:
    """A patient's head relative to the template (kept across that patient's scans)."""

    scale_xyz: tuple[float, float, float]
    elastic_mm: np.ndarray  # (3, nx, ny, nz) displacement lattice in MNI mm
    elastic_origin_mm: tuple[float, float, float]
    ventricle_gain: float  # 0 = template ventricles; 0.3 = strongly enlarged
    ventricle_center_mm: tuple[float, float, float]
    ventricle_sigma_mm: tuple[float, float, float] = (22.0, 34.0, 20.0)


@dataclass(frozen=True)
class Pose:
    """Rigid placement of the head in the scanner for one scan."""

    yaw_deg: float  # about the head's S-I axis: tilts the mid-sagittal plane in-plane
    pitch_deg: float  # about the L-R axis (chin up / down)
    roll_deg: float  # about the A-P axis: tilts the mid-sagittal plane out of the axial plane
    translation_mm: tuple[float, float, float]  # head centre in scanner LPS mm
    head_center_mm: tuple[float, float, float]  # the MNI point placed at that centre

    def rotation(self) -> np.ndarray:
        yaw, pitch, roll = np.deg2rad([self.yaw_deg, self.pitch_deg, self.roll_deg])
        rz = _rotation(2, yaw)
        rx = _rotation(0, pitch)
        ry = _rotation(1, roll)
        return rz @ ry @ rx

    def as_dict(self) -> dict[str, object]:
        return {
            "yaw_deg": round(self.yaw_deg, 4),
            "pitch_deg": round(self.pitch_deg, 4),
            "roll_deg": round(self.roll_deg, 4),
            "translation_mm": [round(v, 4) for v in self.translation_mm],
        }


def _rotation(axis: int, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    i, j = [a for a in range(3) if a != axis]
    matrix = np.eye(3)
    matrix[i, i], matrix[i, j], matrix[j, i], matrix[j, j] = c, -s, s, c
    return matrix


def draw_head_shape(
    rng: np.random.Generator,
    template_bounds_mm: tuple[np.ndarray, np.ndarray],
    ventricle_center_mm: tuple[float, float, float],
) -> HeadShape:
    """Head size +-~8 %, a smooth 1.5-3 mm elastic warp, enlarged ventricles in ~30 %."""
    size = float(np.clip(rng.normal(1.0, 0.04), 0.9, 1.1))
    scale = tuple(float(size * np.clip(rng.normal(1.0, 0.02), 0.95, 1.05)) for _ in range(3))
    lower, upper = template_bounds_mm
    n = np.ceil((upper - lower) / ELASTIC_LATTICE_MM).astype(int) + 3
    field = rng.standard_normal((3, *n))
    field = np.stack([ndimage.gaussian_filter(f, 1.5, mode="wrap") for f in field])
    rms = float(np.sqrt((field**2).sum(axis=0).mean()))
    field *= rng.uniform(1.5, 3.0) / rms
    gain = float(rng.uniform(0.15, 0.35)) if rng.random() < 0.3 else 0.0
    return HeadShape(
        scale_xyz=scale,  # type: ignore[arg-type]
        elastic_mm=field.astype(np.float32),
        elastic_origin_mm=tuple(float(v) for v in lower - ELASTIC_LATTICE_MM),  # type: ignore[arg-type]
        ventricle_gain=gain,
        ventricle_center_mm=ventricle_center_mm,
    )


def draw_pose(rng: np.random.Generator, z_center_mni_mm: float) -> Pose:
    """Several degrees of yaw, pitch and roll and a few mm of shift: never template-aligned."""
    return Pose(
        yaw_deg=float(np.clip(rng.normal(0.0, 6.0), -14.0, 14.0)),
        pitch_deg=float(np.clip(rng.normal(0.0, 6.0), -14.0, 14.0)),
        roll_deg=float(np.clip(rng.normal(0.0, 4.0), -10.0, 10.0)),
        translation_mm=(
            float(rng.normal(0.0, 6.0)),
            float(rng.normal(0.0, 8.0)),
            float(rng.normal(0.0, 4.0)),
        ),
        head_center_mm=(*HEAD_CENTER_XY_MNI, z_center_mni_mm),
    )


def scanner_to_head_affine(pose: Pose, shape: HeadShape) -> np.ndarray:
    """4x4 map from scanner LPS mm to MNI mm for the rigid pose and size (no elastic part).

    scanner = F R S (mni - c) + t   =>   mni = c + S^-1 R^T F (scanner - t)
    """
    inverse_linear = np.diag(1.0 / np.asarray(shape.scale_xyz)) @ pose.rotation().T @ LPS_TO_RAS
    affine = np.eye(4)
    affine[:3, :3] = inverse_linear
    affine[:3, 3] = np.asarray(pose.head_center_mm) - inverse_linear @ np.asarray(
        pose.translation_mm
    )
    return affine


def deform(points_mm: np.ndarray, shape: HeadShape) -> np.ndarray:
    """Where in the template a point of this patient's (rigidly aligned) head comes from.

    `points_mm` is (3, N) MNI mm. Ventricle enlargement pulls sampling points towards the
    ventricles' centre (so their content spreads outward); the elastic lattice adds a smooth
    shift everywhere.
    """
    out = points_mm.astype(np.float32, copy=True)
    if shape.ventricle_gain > 0:
        center = np.asarray(shape.ventricle_center_mm, np.float32)[:, None]
        sigma = np.asarray(shape.ventricle_sigma_mm, np.float32)[:, None]
        offset = out - center
        weight = np.exp(-0.5 * ((offset / sigma) ** 2).sum(axis=0))
        out -= shape.ventricle_gain * weight * offset
    lattice = (out - np.asarray(shape.elastic_origin_mm, np.float32)[:, None]) / ELASTIC_LATTICE_MM
    for axis in range(3):
        out[axis] += ndimage.map_coordinates(
            shape.elastic_mm[axis], lattice, order=1, mode="nearest"
        )
    return out
