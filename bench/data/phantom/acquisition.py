"""Image formation: thick axial slices through the posed head, CT noise and skull-base streaks.

Each 5 mm slice averages several thin sub-slices across its slab (what a detector row
integration does), rather than sampling one plane, so partial volume across the slab is real.
Template-space maps are interpolated once per output voxel through the composed pose and
deformation (trilinear, order 1).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from bench.data.phantom.anatomy import AIR_HU, Template
from bench.data.phantom.pose import HeadShape, Pose, deform, scanner_to_head_affine
from bench.data.phantom.profiles import PhantomProfile
from bench.io import Geometry

IDENTITY_DIRECTION = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
HU_RANGE = (-1024, 3071)
# Grid step (mm) of the patient deformation field: it varies over centimetres.
WARP_FIELD_MM = 4


def output_geometry(profile: PhantomProfile) -> Geometry:
    """Scanner grid centred on the isocentre, axial slices, LPS with identity direction."""
    n, d = profile.matrix, profile.inplane_mm
    z = profile.slice_mm
    return Geometry(
        shape_zyx=(profile.n_slices, n, n),
        spacing_xyz=(d, d, z),
        origin_xyz=(-(n - 1) * d / 2.0, -(n - 1) * d / 2.0, -(profile.n_slices - 1) * z / 2.0),
        direction=IDENTITY_DIRECTION,
    )


@dataclass(frozen=True)
class SampledScan:
    """Noise-free slab-averaged maps on the output grid (z, y, x)."""

    hu: np.ndarray  # float32
    occupancy: np.ndarray  # fraction of each voxel inside the true lesion
    drop_hu: np.ndarray  # the lesion's hypodensity as the slab shows it (what raters see)


def template_image(template: Template, array: np.ndarray) -> sitk.Image:
    """A template-space (i, j, k) array as a SimpleITK image whose physical space is MNI mm."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(array, (2, 1, 0))))
    image.SetSpacing([float(template.resolution_mm)] * 3)
    image.SetOrigin([float(v) for v in template.affine[:3, 3]])
    return image


def head_warp(template: Template, shape: HeadShape) -> sitk.Transform:
    """The patient's deformation (ventricles, elastic) as a displacement field in MNI mm.

    Smooth by construction, so a 4 mm field interpolated linearly is exact enough and makes
    the warp cost independent of the output resolution.
    """
    step = float(WARP_FIELD_MM)
    lower = template.affine[:3, 3] - 2 * step
    upper = template.affine[:3, 3] + template.resolution_mm * (np.asarray(template.shape) - 1)
    counts = np.ceil((upper + 2 * step - lower) / step).astype(int) + 1
    axes = [lower[a] + step * np.arange(counts[a]) for a in range(3)]
    # Field stored (z, y, x, component) for SimpleITK, components in MNI (x, y, z) order.
    zz, yy, xx = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
    points = np.stack([xx.ravel(), yy.ravel(), zz.ravel()]).astype(np.float32)
    moved = deform(points, shape)
    field = (moved - points).T.reshape(*zz.shape, 3).astype(np.float64)
    image = sitk.GetImageFromArray(field, isVector=True)
    image.SetSpacing([step] * 3)
    image.SetOrigin([float(v) for v in lower])
    return sitk.DisplacementFieldTransform(image)


def sample_scan(
    geometry: Geometry,
    subslices: int,
    template: Template,
    warp: sitk.Transform,
    to_head: np.ndarray,
    hu_map: np.ndarray,
    lesion_maps: tuple[np.ndarray, np.ndarray] | None,
) -> SampledScan:
    """Interpolate the head (and the lesion's occupancy and drop) once per thin sub-slice,
    through pose then deformation, and average each slab's sub-slices into its thick slice.

    `to_head` is the scanner-LPS-to-MNI affine of the scan's pose. The lesion maps are only
    resampled in the part of the grid that can hold the lesion (it is small; the grid is not).
    """
    nz, ny, nx = geometry.shape_zyx
    rigid = sitk.AffineTransform(3)
    rigid.SetMatrix([float(v) for v in to_head[:3, :3].ravel()])
    rigid.SetTranslation([float(v) for v in to_head[:3, 3]])
    transform = sitk.CompositeTransform([warp, rigid])  # applied right to left: pose, then warp

    full = (slice(0, nz), slice(0, ny), slice(0, nx))
    hu = _resample_slabs(hu_map, template, transform, geometry, subslices, full, AIR_HU)
    occupancy = np.zeros((nz, ny, nx), np.float32)
    drop = np.zeros((nz, ny, nx), np.float32)
    if lesion_maps is not None:
        box = _lesion_box_on_grid(lesion_maps[0] + lesion_maps[1], template, to_head, geometry)
        if box is not None:
            for source, target in zip(lesion_maps, (occupancy, drop), strict=True):
                target[box] = _resample_slabs(source, template, transform, geometry, subslices, box)
    return SampledScan(hu=hu, occupancy=occupancy, drop_hu=drop)


def _resample_slabs(
    array: np.ndarray,
    template: Template,
    transform: sitk.Transform,
    geometry: Geometry,
    subslices: int,
    box: tuple[slice, slice, slice],
    outside: float = 0.0,
) -> np.ndarray:
    """Resample `array` on the thin sub-slices of the grid region `box` (z, y, x), average."""
    dx, dy, dz = geometry.spacing_xyz
    ox, oy, oz = geometry.origin_xyz
    bz, by, bx = box
    size = (bx.stop - bx.start, by.stop - by.start, (bz.stop - bz.start) * subslices)
    reference = sitk.Image(*size, sitk.sitkUInt8)
    reference.SetSpacing((dx, dy, dz / subslices))
    first_z = oz + dz * bz.start - dz / 2.0 + dz / (2.0 * subslices)
    reference.SetOrigin((ox + dx * bx.start, oy + dy * by.start, first_z))
    moving = template_image(template, array.astype(np.float32))
    resampled = sitk.Resample(
        moving, reference, transform, sitk.sitkLinear, float(outside), sitk.sitkFloat32
    )
    values = sitk.GetArrayFromImage(resampled)
    return values.reshape(size[2] // subslices, subslices, size[1], size[0]).mean(axis=1)


def _lesion_box_on_grid(
    lesion: np.ndarray, template: Template, to_head: np.ndarray, geometry: Geometry
) -> tuple[slice, slice, slice] | None:
    """The output-grid region (z, y, x slices) the lesion can map into, with a margin for the
    deformation (at most ~10 mm)."""
    where = np.argwhere(lesion > 0)
    if len(where) == 0:
        return None
    lower, upper = where.min(axis=0) - 1, where.max(axis=0) + 1
    corners_ijk = np.array(list(itertools.product(*zip(lower, upper, strict=True))), float)
    corners_mni = corners_ijk @ template.affine[:3, :3].T + template.affine[:3, 3]
    to_scanner = np.linalg.inv(to_head)
    corners = corners_mni @ to_scanner[:3, :3].T + to_scanner[:3, 3]
    margin_mm = 12.0
    spacing = np.asarray(geometry.spacing_xyz)
    origin = np.asarray(geometry.origin_xyz)
    low = np.floor((corners.min(axis=0) - margin_mm - origin) / spacing).astype(int)
    high = np.ceil((corners.max(axis=0) + margin_mm - origin) / spacing).astype(int) + 1
    shape_xyz = np.asarray(geometry.shape_zyx[::-1])
    low, high = np.clip(low, 0, shape_xyz), np.clip(high, 0, shape_xyz)
    if np.any(high <= low):
        return None
    return tuple(slice(int(low[a]), int(high[a])) for a in (2, 1, 0))  # type: ignore[return-value]


def add_noise(
    hu: np.ndarray, rng: np.random.Generator, sd_hu: float, inplane_mm: float
) -> np.ndarray:
    """CT-like noise: band-limited (correlated over ~1 mm in-plane), independent per slice."""
    sigma_px = max(0.45, 0.7 / inplane_mm)
    white = rng.standard_normal(hu.shape).astype(np.float32)
    fine = ndimage.gaussian_filter(white, (0, sigma_px, sigma_px))
    coarse = ndimage.gaussian_filter(white, (0, 3 * sigma_px, 3 * sigma_px))
    noise = fine - 0.5 * coarse
    noise *= sd_hu / max(float(noise.std()), 1e-6)
    return hu + noise


def add_skull_base_streaks(
    hu: np.ndarray,
    rng: np.random.Generator,
    geometry: Geometry,
    pose: Pose,
    shape: HeadShape,
) -> np.ndarray:
    """Mild dark/bright bands between dense bone in slices below the tentorium (MNI z < -20)."""
    to_head = scanner_to_head_affine(pose, shape)
    to_scanner = np.linalg.inv(to_head)
    nz, ny, nx = geometry.shape_zyx
    dx, dy, dz = geometry.spacing_xyz
    ox, oy, oz = geometry.origin_xyz
    center = to_scanner[:3, :3] @ np.array([0.0, -35.0, -35.0]) + to_scanner[:3, 3]
    xs = ox + dx * np.arange(nx)
    ys = oy + dy * np.arange(ny)
    out = hu.copy()
    angles = rng.uniform(0.0, np.pi, size=int(rng.integers(2, 5)))
    amplitudes = rng.uniform(6.0, 15.0, size=len(angles)) * rng.choice([-1.0, 1.0], len(angles))
    for k in range(nz):
        z = oz + dz * k
        depth_mm = (to_head[2, :3] @ np.array([center[0], center[1], z]) + to_head[2, 3]) + 20.0
        if depth_mm > 0:
            continue  # above the skull base
        fade = float(np.exp(depth_mm / 25.0))
        inside = hu[k] > -300
        band = np.zeros((ny, nx), np.float32)
        for angle, amplitude in zip(angles, amplitudes, strict=True):
            normal = np.array([np.cos(angle), np.sin(angle)])
            distance = (xs[None, :] - center[0]) * normal[0] + (ys[:, None] - center[1]) * normal[1]
            band += amplitude * np.exp(-0.5 * (distance / 3.0) ** 2)
        out[k] += fade * band * inside
    return out


def to_int16_hu(hu: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(hu), *HU_RANGE).astype(np.int16)
