"""The acute lesion (one MCA territory, soft edge, hypodense core) and the distractors raters
must not label (old infarcts, calcifications), all drawn in template space.

The lesion is a smooth random field thresholded inside the territory at the level that gives
the wanted volume; the field's height above that level sets how strong the hypodensity is, so
the core is darkest and the edge faintest. A later scan of the same patient lowers the level
(the same lesion, grown).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from bench.data.phantom.anatomy import Template, TissueHU

SIDES = ("left", "right")
# True lesion volume (ml) of the patients with a visible lesion: a two-piece log-normal (one
# log-sd below the median, another above), set so that the reference rater's volumes over all
# patients' first scans (lesion-free patients and missed lesions count as 0 ml) have the
# study's median of 12 ml and IQR of 5-30 ml. A draws a little less than the truth, relatively
# less on large lesions, and about one patient in nine has nothing drawn: a symmetric
# log-normal cannot give A both quartiles (tests/data/test_phantom_calibration.py).
VOLUME_MEDIAN_ML = 15.5
VOLUME_LOG_SD_BELOW = 1.0
VOLUME_LOG_SD_ABOVE = 1.4
VOLUME_RANGE_ML = (0.8, 150.0)


@functools.lru_cache(maxsize=4)
def mca_territory(template: Template, side: str) -> np.ndarray:
    """Approximate middle-cerebral-artery territory of one hemisphere (boolean mask).

    Lateral frontal, parietal and temporal cortex with their white matter, the insula and the
    basal ganglia; not the medial strip (ACA), the occipital lobe and inferomedial temporal
    lobe (PCA) or the posterior fossa.
    """
    x, y, z = template.mni_coordinates()
    lateral = x if side == "right" else -x
    tissue = (template.gm + template.wm) > 0.5
    aca = (lateral < 12) | ((lateral < 26) & (z > 22)) | ((lateral < 20) & (y > 25))
    thalamus = (lateral < 22) & (y < -8) & (y > -40) & (z < 20)
    pca = (y < -72) | ((y < -28) & (z < -6)) | thalamus
    bounds = (z > -32) & (z < 72) & (y > -95) & (y < 60)
    return tissue & (lateral > 4) & bounds & ~aca & ~pca


@functools.lru_cache(maxsize=4)
def _territory_depth_mm(template: Template, side: str) -> np.ndarray:
    return ndimage.distance_transform_edt(mca_territory(template, side)) * template.resolution_mm


@dataclass(frozen=True)
class LesionPlan:
    """A patient's acute lesion before it is rendered: where, how big, how dark."""

    side: str
    center_index: tuple[int, int, int]
    volume_ml: float  # in template space (divide out the head's scale for the scanner)
    core_drop_hu: float
    edge_drop_hu: float
    grey_white_blur: float  # fraction of the grey-white contrast lost in the core
    field_seed: int


@dataclass(frozen=True)
class LesionMaps:
    """Rendered lesion in template space: occupancy (0/1) and hypodensity (HU, >= 0)."""

    occupancy: np.ndarray
    drop_hu: np.ndarray
    strength: np.ndarray  # 0 at the edge .. 1 in the core (inside the lesion only)


def volume_from_quantile(u: float) -> float:
    """Lesion volume (ml) at cohort quantile `u` of the two-piece log-normal distribution."""
    from scipy.stats import norm

    z = float(norm.ppf(u))
    volume = VOLUME_MEDIAN_ML * np.exp(z * (VOLUME_LOG_SD_BELOW if z < 0 else VOLUME_LOG_SD_ABOVE))
    return float(np.clip(volume, *VOLUME_RANGE_ML))


def plan_lesion(rng: np.random.Generator, template: Template, volume_ml: float) -> LesionPlan:
    """Choose side, centre and contrast. Big lesions centre deep so that they fit."""
    side = SIDES[int(rng.integers(2))]
    depth = _territory_depth_mm(template, side)
    radius = (3.0 * volume_ml * 1000.0 / (4.0 * np.pi)) ** (1.0 / 3.0)
    need = min(0.45 * radius, 0.7 * float(depth.max()))
    candidates = np.argwhere(depth >= max(need, template.resolution_mm))
    center = candidates[int(rng.integers(len(candidates)))]
    core = rng.uniform(5.0, 11.0)
    return LesionPlan(
        side=side,
        center_index=tuple(int(c) for c in center),  # type: ignore[arg-type]
        volume_ml=volume_ml,
        core_drop_hu=core,
        edge_drop_hu=rng.uniform(1.0, 2.0),
        grey_white_blur=rng.uniform(0.4, 0.8),
        field_seed=int(rng.integers(2**31)),
    )


def render_lesion(template: Template, plan: LesionPlan, growth: float = 1.0) -> LesionMaps:
    """Threshold the lesion field at the level giving `plan.volume_ml * growth`, one blob."""
    territory = mca_territory(template, plan.side)
    res = template.resolution_mm
    volume_ml = plan.volume_ml * growth
    radius_mm = (3.0 * volume_ml * 1000.0 / (4.0 * np.pi)) ** (1.0 / 3.0)
    half = int(np.ceil((2.5 * radius_mm + 10.0) / res))
    box = tuple(
        slice(max(0, c - half), min(n, c + half + 1))
        for c, n in zip(plan.center_index, template.shape, strict=True)
    )
    inside = territory[box]
    grids = np.meshgrid(
        *[
            (np.arange(s.start, s.stop) - c) * res
            for s, c in zip(box, plan.center_index, strict=True)
        ],
        indexing="ij",
    )
    distance2 = sum(g.astype(np.float32) ** 2 for g in grids)
    noise = np.random.default_rng(plan.field_seed).standard_normal(inside.shape)
    noise = ndimage.gaussian_filter(noise, max(3.0, 0.5 * radius_mm) / res)
    noise /= max(float(noise.std()), 1e-6)
    field = -distance2 / (2.0 * radius_mm**2) + 0.35 * noise
    field = np.where(inside, field, -np.inf).astype(np.float32)

    target = max(1, round(volume_ml / template.voxel_ml))
    seed = tuple(c - s.start for c, s in zip(plan.center_index, box, strict=True))
    blob = _connected_blob(field, target, seed)
    level = float(field[blob].min())
    peak = float(np.percentile(field[blob], 95))
    strength = np.clip((field - level) / max(peak - level, 1e-6), 0.0, 1.0) * blob
    drop = (plan.edge_drop_hu + (plan.core_drop_hu - plan.edge_drop_hu) * strength) * blob
    # A soft edge: the hypodensity fades over ~1.5 mm rather than stopping at the blob.
    drop = ndimage.gaussian_filter(drop.astype(np.float32), 1.5 / res)

    occupancy = np.zeros(template.shape, np.float32)
    drop_full = np.zeros(template.shape, np.float32)
    strength_full = np.zeros(template.shape, np.float32)
    occupancy[box] = blob
    drop_full[box] = drop
    strength_full[box] = strength
    return LesionMaps(occupancy=occupancy, drop_hu=drop_full, strength=strength_full)


def _connected_blob(field: np.ndarray, target: int, seed: tuple[int, ...]) -> np.ndarray:
    """The connected set `field >= level` holding `seed`, with the level chosen (by bisection
    over the field's sorted values) so that its size is as close to `target` as possible.

    One blob, never scattered islands: the size grows monotonically as the level falls.
    """
    levels = np.sort(field[np.isfinite(field)])[::-1]

    def blob_at(index: int) -> np.ndarray:
        labels, _ = ndimage.label(field >= levels[index])
        return labels == labels[seed] if labels[seed] else np.zeros(field.shape, bool)

    lo, hi = 0, len(levels) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if int(blob_at(mid).sum()) < target:
            lo = mid + 1
        else:
            hi = mid
    blob = blob_at(lo)
    if not blob.any():  # the seed itself is always inside its own level
        blob = np.zeros(field.shape, bool)
        blob[seed] = True
    return blob


def apply_lesion(
    hu: np.ndarray, template: Template, tissue: TissueHU, lesion: LesionMaps, plan: LesionPlan
) -> np.ndarray:
    """Darken brain tissue by the drop and pull grey matter towards white: the lost grey-white
    differentiation (insular ribbon, obscured lentiform nucleus) of early ischaemia."""
    brain = template.gm + template.wm
    contrast = (tissue.grey - tissue.white) * template.gm
    return hu - brain * (lesion.drop_hu + plan.grey_white_blur * lesion.strength * contrast)
