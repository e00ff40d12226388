"""Findings a rater sees and rightly does not label as acute: old infarcts and calcifications.

They make the task honest: a method that segments every hypodensity, or every deviation from
the mirrored hemisphere, pays for it in precision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from bench.data.phantom.anatomy import Template, TissueHU

# Typical sites of physiological calcification (MNI mm): pineal gland, choroid plexus glomera,
# globus pallidus on each side.
CALCIFICATION_SITES_MNI = (
    (0.0, -30.0, 4.0),
    (27.0, -42.0, 16.0),
    (-27.0, -42.0, 16.0),
    (19.0, -3.0, -1.0),
    (-19.0, -3.0, -1.0),
)


@dataclass(frozen=True)
class Distractors:
    """What to paint into a patient's head; shared by all of that patient's scans."""

    old_infarcts: tuple[tuple[tuple[int, int, int], float, int], ...]  # (centre, ml, seed)
    calcifications: tuple[tuple[tuple[float, float, float], float, float], ...]  # (mm, r, HU)


def draw_distractors(
    rng: np.random.Generator, template: Template, avoid: np.ndarray | None
) -> Distractors:
    """An old infarct in ~30 % of patients (away from the acute lesion), calcifications in ~60 %."""
    infarcts = []
    if rng.random() < 0.3:
        tissue = (template.gm + template.wm) > 0.6
        if avoid is not None:
            tissue &= ~ndimage.binary_dilation(avoid > 0, iterations=6)
        candidates = np.argwhere(tissue)
        for _ in range(1 + int(rng.random() < 0.25)):
            center = candidates[int(rng.integers(len(candidates)))]
            infarcts.append(
                (
                    tuple(int(c) for c in center),
                    float(np.exp(rng.uniform(np.log(0.5), np.log(8.0)))),
                    int(rng.integers(2**31)),
                )
            )
    calcifications = []
    if rng.random() < 0.6:
        n = int(rng.integers(1, 4))
        for index in rng.choice(len(CALCIFICATION_SITES_MNI), size=n, replace=False):
            site = np.asarray(CALCIFICATION_SITES_MNI[int(index)]) + rng.normal(0.0, 1.5, 3)
            calcifications.append(
                (
                    tuple(float(v) for v in site),
                    float(rng.uniform(1.2, 2.5)),
                    float(rng.uniform(120.0, 400.0)),
                )
            )
    return Distractors(tuple(infarcts), tuple(calcifications))  # type: ignore[arg-type]


def apply_distractors(
    hu: np.ndarray, template: Template, tissue: TissueHU, distractors: Distractors
) -> np.ndarray:
    """Old infarcts: sharp-edged, near-CSF density. Calcifications: small bright spots."""
    res = template.resolution_mm
    out = hu.copy()
    for center, volume_ml, seed in distractors.old_infarcts:
        radius = (3.0 * volume_ml * 1000.0 / (4.0 * np.pi)) ** (1.0 / 3.0)
        half = int(np.ceil(2.0 * radius / res)) + 2
        box = tuple(
            slice(max(0, c - half), min(n, c + half + 1))
            for c, n in zip(center, template.shape, strict=True)
        )
        grids = np.meshgrid(
            *[(np.arange(s.start, s.stop) - c) * res for s, c in zip(box, center, strict=True)],
            indexing="ij",
        )
        distance = np.sqrt(sum(g.astype(np.float32) ** 2 for g in grids))
        noise = ndimage.gaussian_filter(
            np.random.default_rng(seed).standard_normal(distance.shape), 2.0 / res
        )
        noise /= max(float(noise.std()), 1e-6)
        inside = (distance / radius + 0.25 * noise < 1.0) & ((template.gm + template.wm)[box] > 0.3)
        gliosis_hu = tissue.csf + 4.0
        out[box] = np.where(inside, gliosis_hu, out[box])
    x, y, z = template.mni_coordinates()
    for site, radius, peak_hu in distractors.calcifications:
        distance2 = (x - site[0]) ** 2 + (y - site[1]) ** 2 + (z - site[2]) ** 2
        out += (peak_hu * np.exp(-0.5 * distance2 / radius**2)).astype(np.float32)
    return out
