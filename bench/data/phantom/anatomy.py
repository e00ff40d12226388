"""Head anatomy in the MNI152 frame: tissue fractions from nilearn's templates, plus the
intracranial CSF, skull and scalp a head CT shows and the (skull-stripped) template lacks.

Everything here lives on the template's own voxel grid, indexed (i, j, k) as nibabel returns
it, with `affine` mapping indices to MNI millimetres (RAS). Per-case Hounsfield maps are a
linear mix of the tissue fractions (partial volume), so interpolating the mixed map later is
the same as mixing interpolated fractions.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

logger = logging.getLogger(__name__)

AIR_HU = -1000.0


@dataclass(frozen=True, eq=False)  # hashed by identity: cached per-template masks use it
class Template:
    """Tissue fractions of the average brain and the distance to its inner skull surface."""

    resolution_mm: int
    affine: np.ndarray  # (4, 4) voxel index -> MNI mm
    gm: np.ndarray  # grey-matter fraction
    wm: np.ndarray  # white-matter fraction
    brain: np.ndarray  # brain-mask fraction (GM + WM + CSF inside the mask)
    # Signed distances (mm), negative inside: from the inner table (the cranial cavity) and
    # from a smooth hull of it that fills the skull base between the fossae with bone.
    skull_distance_mm: np.ndarray
    hull_distance_mm: np.ndarray
    ventricle_center_mm: tuple[float, float, float]

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.gm.shape  # type: ignore[return-value]

    @property
    def voxel_ml(self) -> float:
        return self.resolution_mm**3 / 1000.0

    def mni_coordinates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Open (broadcastable) MNI x, y, z coordinate grids of the voxel centres."""
        i, j, k = (np.arange(n, dtype=np.float32) for n in self.shape)
        a = self.affine
        # The nilearn templates are axis-aligned: the affine is diagonal plus an offset.
        return (
            (a[0, 0] * i + a[0, 3])[:, None, None],
            (a[1, 1] * j + a[1, 3])[None, :, None],
            (a[2, 2] * k + a[2, 3])[None, None, :],
        )


@dataclass(frozen=True)
class TissueHU:
    """One patient's densities (HU) and skull/scalp thickness (mm), drawn per case."""

    grey: float
    white: float
    csf: float
    cortical_bone: float
    diploe: float
    scalp: float
    skull_mm: float
    table_mm: float
    scalp_mm: float


def draw_tissue_hu(rng: np.random.Generator) -> TissueHU:
    """Densities in the ranges reported for adult non-contrast head CT."""
    white = rng.uniform(25.0, 30.0)
    grey = max(rng.uniform(35.0, 40.0), white + 7.0)
    skull_mm = rng.uniform(5.0, 8.0)
    return TissueHU(
        grey=grey,
        white=white,
        csf=rng.uniform(2.0, 12.0),
        cortical_bone=rng.uniform(1100.0, 1600.0),
        diploe=rng.uniform(350.0, 650.0),
        scalp=rng.uniform(20.0, 45.0),
        skull_mm=skull_mm,
        table_mm=rng.uniform(1.5, 2.2),
        scalp_mm=rng.uniform(4.0, 7.0),
    )


@functools.lru_cache(maxsize=2)
def load_template(resolution_mm: int) -> Template:
    """Load nilearn's MNI152 2009a templates (shipped with the package, read offline) once.

    The 1 mm files are read and, for 2 mm, averaged down here: nilearn's own 2 mm loader
    resamples each map with a spline (several seconds); a [1/4, 1/2, 1/4] average lands on the
    same 2 mm grid and keeps the fractions' partial volume.
    """
    if resolution_mm not in (1, 2):
        raise ValueError(f"template resolution must be 1 or 2 mm, got {resolution_mm}")
    from nilearn import datasets

    logger.info("loading the MNI152 2009a templates from nilearn (%d mm)", resolution_mm)

    def load(name: str) -> tuple[np.ndarray, np.ndarray]:
        image = getattr(datasets, name)(resolution=1)
        array = np.asarray(image.get_fdata(), dtype=np.float32)
        affine = np.asarray(image.affine, dtype=np.float64)
        if resolution_mm == 2:
            for axis in range(3):
                array = ndimage.convolve1d(array, [0.25, 0.5, 0.25], axis=axis, mode="constant")
            array = np.ascontiguousarray(array[::2, ::2, ::2])
            affine = affine @ np.diag([2.0, 2.0, 2.0, 1.0])
        return array, affine

    t1, affine = load("load_mni152_template")
    gm, _ = load("load_mni152_gm_template")
    wm, _ = load("load_mni152_wm_template")
    mask, _ = load("load_mni152_brain_mask")
    brain = np.clip(np.maximum(mask, (t1 > 0.02).astype(np.float32)), 0.0, 1.0)
    gm = np.clip(gm, 0.0, 1.0) * brain
    wm = np.clip(wm, 0.0, 1.0) * brain
    over = np.maximum(gm + wm, 1.0)  # fractions must not exceed 1 (CSF = the rest)
    gm, wm = gm / over, wm / over

    cavity = _cranial_cavity(brain > 0.5, resolution_mm)
    # The skull base: the gaps between the cranial fossae are bone, not air, so the outer
    # surface of the skull follows a heavily smoothed hull as well as the cavity's offset.
    hull = ndimage.gaussian_filter(cavity.astype(np.float32), sigma=8.0 / resolution_mm) > 0.3
    hull = ndimage.binary_fill_holes(hull | cavity)
    template = Template(
        resolution_mm=resolution_mm,
        affine=affine,
        gm=gm.astype(np.float32),
        wm=wm.astype(np.float32),
        brain=brain.astype(np.float32),
        skull_distance_mm=_signed_distance_mm(cavity, resolution_mm),
        hull_distance_mm=_signed_distance_mm(hull, resolution_mm),
        ventricle_center_mm=(0.0, 0.0, 0.0),
    )
    return _with_ventricle_center(template)


def _signed_distance_mm(inside: np.ndarray, resolution_mm: int) -> np.ndarray:
    """Distance to the mask's surface, negative inside (the surface lies between voxels)."""
    outside_mm = ndimage.distance_transform_edt(~inside) * resolution_mm
    inside_mm = ndimage.distance_transform_edt(inside) * resolution_mm
    half = 0.5 * resolution_mm
    return np.where(inside, half - inside_mm, outside_mm - half).astype(np.float32)


def _cranial_cavity(brain: np.ndarray, resolution_mm: int) -> np.ndarray:
    """The brain's smoothed hull: brain plus the subarachnoid CSF between it and the skull."""
    hull = ndimage.gaussian_filter(brain.astype(np.float32), sigma=4.0 / resolution_mm) > 0.2
    hull = ndimage.binary_fill_holes(hull | brain)
    return ndimage.binary_dilation(hull, iterations=max(1, round(1.0 / resolution_mm)))


def _with_ventricle_center(template: Template) -> Template:
    """Centre of the lateral ventricles: CSF inside the brain in a central box of MNI space."""
    x, y, z = template.mni_coordinates()
    csf = template.brain - template.gm - template.wm
    box = (np.abs(x) < 30) & (y > -50) & (y < 30) & (z > -5) & (z < 35)
    weights = np.where(box & (csf > 0.5), csf, 0.0)
    total = float(weights.sum())
    center = tuple(
        float((weights * np.broadcast_to(c, weights.shape)).sum() / total) for c in (x, y, z)
    )
    return dataclasses.replace(template, ventricle_center_mm=center)


def ramp(distance_mm: np.ndarray, at_mm: float, width_mm: float) -> np.ndarray:
    """Fraction of a voxel lying beyond the surface `distance == at_mm` (partial volume)."""
    return np.clip((distance_mm - at_mm) / width_mm + 0.5, 0.0, 1.0)


def head_hu(template: Template, tissue: TissueHU) -> np.ndarray:
    """Hounsfield map of the whole head in template space (float32), before any lesion."""
    d = template.skull_distance_mm
    w = float(template.resolution_mm)
    beyond_inner = ramp(d, 0.0, w)
    beyond_table1 = ramp(d, tissue.table_mm, w)
    outer = np.minimum(d - tissue.skull_mm, template.hull_distance_mm)
    beyond_table2 = np.maximum(ramp(outer, -tissue.table_mm, w), beyond_table1)
    beyond_skull = ramp(outer, 0.0, w)
    beyond_scalp = ramp(outer, tissue.scalp_mm, w)

    gm, wm = template.gm, template.wm
    brain_hu = gm * tissue.grey + wm * tissue.white + (1.0 - gm - wm) * tissue.csf
    bone_hu = (
        (beyond_inner - beyond_table1) * tissue.cortical_bone
        + (beyond_table1 - beyond_table2) * tissue.diploe
        + (beyond_table2 - beyond_skull) * tissue.cortical_bone
    )
    hu = (
        (1.0 - beyond_inner) * brain_hu
        + bone_hu
        + (beyond_skull - beyond_scalp) * tissue.scalp
        + beyond_scalp * AIR_HU
    )
    return hu.astype(np.float32)
