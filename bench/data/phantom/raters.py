"""Three simulated neuroradiologists who label what they see, not the truth.

A rater looks at the lesion's hypodensity as the thick slice shows it, blurred by how broadly
they read the image, and draws each 5 mm slice separately (blocky across slices, smooth
in-plane) where that hypodensity exceeds their own threshold. Boundary noise, a small
in-plane misplacement and the odd missed faint or small lesion complete the picture. The
styles below are calibrated (tests/data/test_phantom_calibration.py) so that agreement
between raters matches the study's experts: B draws larger than A, C smaller and more often
misses faint or small lesions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

RATERS = ("A", "B", "C")


# A voxel's hypodensity counts as visible above this fraction of the scan's peak.
VISIBLE_FRACTION = 0.15
# How far (mm) from the visible hypodensity a rater's misperception can move the outline.
WOBBLE_REACH_MM = 12.0
# Raters outline brain only: a voxel whose noise-free density is outside this window (HU) is
# bone, partial-volumed skull or air, which nobody labels as infarct. Without it, outlines of
# cortical lesions spilled into the skull (up to 18% of a mask in the v1 phantom), and
# nnU-Net's CT normalisation, which takes its window from the labelled voxels, stretched to
# 4-1164 HU and squeezed the 5-10 HU lesion contrast into noise.
PARENCHYMA_HU = (-15.0, 80.0)


def drawable(noise_free_hu: np.ndarray) -> np.ndarray:
    """Voxels a rater may outline (brain and CSF, not bone or air)."""
    low, high = PARENCHYMA_HU
    return (noise_free_hu > low) & (noise_free_hu < high)


@dataclass(frozen=True)
class RaterStyle:
    # How much the rater labels relative to the visible extent of the hypodensity (volume
    # ratio), and how that varies from scan to scan (log-normal sd).
    extent: float
    extent_log_sd: float
    # In-plane blur (mm) of what the rater perceives: wider = rounder, smoother outlines.
    blur_mm: float
    # Perception noise: a smooth random field (fraction of the peak) of this correlation
    # length that moves the outline in and out.
    wobble: float
    wobble_mm: float
    # Per-scan in-plane misplacement of the whole drawing (sd, mm).
    shift_mm: float
    # Probability of labelling nothing on an inconspicuous (faint or small) / obvious lesion.
    miss_faint: float
    miss_obvious: float


# Calibrated against the study's expert agreement on the demo phantom (see module docstring).
STYLES: dict[str, RaterStyle] = {
    "A": RaterStyle(
        extent=0.95,
        extent_log_sd=0.05,
        blur_mm=1.2,
        wobble=0.40,
        wobble_mm=19.0,
        shift_mm=1.9,
        miss_faint=0.08,
        miss_obvious=0.0,
    ),
    "B": RaterStyle(
        extent=1.6,
        extent_log_sd=0.05,
        blur_mm=4.3,
        wobble=0.45,
        wobble_mm=19.0,
        shift_mm=0.7,
        miss_faint=0.03,
        miss_obvious=0.0,
    ),
    "C": RaterStyle(
        extent=0.36,
        extent_log_sd=0.05,
        blur_mm=1.2,
        wobble=0.38,
        wobble_mm=19.0,
        shift_mm=3.0,
        miss_faint=0.35,
        miss_obvious=0.03,
    ),
}


def is_inconspicuous(core_drop_hu: float, volume_ml: float) -> bool:
    """Faint (a small density drop) or small lesions are the ones raters disagree on."""
    return core_drop_hu < 6.5 or volume_ml < 4.0


def draw_rater_mask(
    rng: np.random.Generator,
    style: RaterStyle,
    drop_hu: np.ndarray,
    spacing_zyx_mm: tuple[float, float, float],
    inconspicuous: bool,
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """One rater's binary mask (uint8, z, y, x) for a scan whose visible hypodensity is
    `drop_hu` (noise-free, slab-averaged). The rater's randomness all comes from `rng`.
    Only voxels in `allowed` (default: all; see `drawable`) are ever drawn.

    The outline is the level of the rater's perceived (blurred, noisy, shifted) hypodensity
    that encloses `extent` times the visible volume: raters differ in how much they call
    lesion relative to what they see, whatever the lesion's size.
    """
    mask = np.zeros(drop_hu.shape, np.uint8)
    miss = style.miss_faint if inconspicuous else style.miss_obvious
    missed = rng.random() < miss
    extent = style.extent * float(np.exp(rng.normal(0.0, style.extent_log_sd)))
    shift = rng.normal(0.0, style.shift_mm, size=2)
    peak = float(drop_hu.max())
    if missed or peak <= 0:
        return mask
    _, dy, dx = spacing_zyx_mm
    box = _lesion_box(drop_hu, margin_px=(int(np.ceil(15.0 / dy)), int(np.ceil(15.0 / dx))))
    region = drop_hu[box] / peak
    visible_voxels = int(np.count_nonzero(region > VISIBLE_FRACTION))
    blurred = ndimage.gaussian_filter(region, (0, style.blur_mm / dy, style.blur_mm / dx))
    seen = ndimage.shift(
        blurred / max(float(blurred.max()), 1e-6),
        (0, shift[0] / dy, shift[1] / dx),
        order=1,
        mode="nearest",
    )
    wobble_px = (style.wobble_mm / dy, style.wobble_mm / dx)
    noise = ndimage.gaussian_filter(rng.standard_normal(seen.shape), (0, *wobble_px))
    # Misperception moves the outline near the hypodensity; it fades away from it, so a
    # rater never extends a drawing far into normal-looking brain.
    away_mm = ndimage.distance_transform_edt(region <= VISIBLE_FRACTION, sampling=spacing_zyx_mm)
    taper = np.exp(-0.5 * (away_mm / WOBBLE_REACH_MM) ** 2)
    perceived = seen + noise * taper * (style.wobble / max(float(noise.std()), 1e-6))
    if allowed is not None:
        perceived = np.where(allowed[box], perceived, -np.inf)
    wanted = int(round(extent * visible_voxels))
    if wanted < 1:
        return mask
    values = np.sort(perceived, axis=None)[::-1]
    level = float(values[min(wanted, values.size) - 1])
    drawn = (perceived >= level) & np.isfinite(perceived)
    min_area_px = 12.0 / (dy * dx)  # specks under ~12 mm^2 are not drawn
    evident = seen > min(level, 0.5)
    for k in range(drawn.shape[0]):
        drawn[k] = _clean_slice(drawn[k], evident[k], min_area_px)
    mask[box] = drawn
    return mask


def _lesion_box(values: np.ndarray, margin_px: tuple[int, int]) -> tuple[slice, ...]:
    where = np.argwhere(values > 0)
    lower, upper = where.min(axis=0), where.max(axis=0) + 1
    margins = (0, *margin_px)
    return tuple(
        slice(max(0, lo - m), min(n, hi + m))
        for lo, hi, m, n in zip(lower, upper, margins, values.shape, strict=True)
    )


def _clean_slice(drawn: np.ndarray, evident: np.ndarray, min_area_px: float) -> np.ndarray:
    """A contour a person draws: holes filled, specks dropped, and only around hypodensity
    that is really there (boundary noise moves edges, it does not invent islands)."""
    if not drawn.any():
        return drawn
    filled = ndimage.binary_fill_holes(drawn)
    labels, n = ndimage.label(filled)
    index = np.arange(1, n + 1)
    areas = ndimage.sum(filled, labels, index=index)
    evidence = ndimage.maximum(evident, labels, index=index)
    keep = index[(areas >= min_area_px) & (evidence > 0)]
    return np.isin(labels, keep)
