"""Synthetic per-case tables whose metrics come from geometry, not from the code under test.

Each lesion is a star-shaped outline r(theta) around a shared centre, extruded over a fixed
depth. Areas and overlaps are exact (overlap = integral of min(r1, r2)^2 / 2), so Dice,
Precision, Recall, VS and the volumes are worked out by hand; surface distances use the radial
gap |r1 - r2| as a stand-in for the nearest-surface distance. Eroding a mask therefore lowers
Dice and Recall and raises AVD and the distances, as it would on images.

Raters A, B, C and the hidden truth outline the same true lesion with their own biases (B grows
it, C shrinks it, A sits in between) and smooth noise; a method is any function of rater A's
outline.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from bench.metric_names import METRIC_NAMES, PER_CASE_COLUMNS

ANGLES = 90
THETA = np.linspace(0, 2 * np.pi, ANGLES, endpoint=False)
DEPTH_MM = 20.0  # extrusion depth: a 15 mm radius is about 14 ml
RATER_BIAS_MM = {"A": 0.0, "B": 1.5, "C": -1.0}
Outline = np.ndarray  # radius per angle, mm
Transform = Callable[[Outline, np.random.Generator], Outline]


def smooth_noise(rng: np.random.Generator, sd_mm: float) -> np.ndarray:
    """A smooth random wobble of the outline: a few low-frequency harmonics."""
    wobble = np.zeros(ANGLES)
    for k in range(1, 5):
        wobble += rng.normal(0, sd_mm / 2) * np.cos(k * THETA + rng.uniform(0, 2 * np.pi))
    return wobble + rng.normal(0, sd_mm / 2)


def outline_metrics(reference: Outline, test: Outline) -> dict[str, float | str | None]:
    """Every metric of PER_CASE_COLUMNS for two outlines, worked out by hand."""
    step = 2 * np.pi / ANGLES
    ref_area = float((reference**2).sum() / 2 * step)
    test_area = float((test**2).sum() / 2 * step)
    row: dict[str, float | str | None] = {
        "V_ref": ref_area * DEPTH_MM / 1000,
        "V_test": test_area * DEPTH_MM / 1000,
    }
    row["AVD"] = abs(row["V_ref"] - row["V_test"])  # type: ignore[operator]
    if ref_area == 0 or test_area == 0:
        row.update({m: np.nan for m in METRIC_NAMES if m not in row})
        # the evaluator's wording (bench.evaluate.pair.nan_reason)
        if ref_area == 0 and test_area == 0:
            row["nan_reason"] = "reference and test empty"
        else:
            row["nan_reason"] = "reference empty" if ref_area == 0 else "test empty"
        return row
    tp = float((np.minimum(reference, test) ** 2).sum() / 2 * step)
    fp, fn = test_area - tp, ref_area - tp
    row["Dice"] = 2 * tp / (2 * tp + fp + fn)
    row["VS"] = 1 - abs(fn - fp) / (2 * tp + fp + fn)
    row["Precision"] = tp / test_area
    row["Recall"] = tp / ref_area
    gap = np.abs(reference - test)
    row["ASD"] = float(gap.mean())
    row["HD95"] = float(np.percentile(gap, 95))
    for tolerance in (0, 5, 10):
        row[f"SDT{tolerance}"] = float((gap <= tolerance).mean())
    row["nan_reason"] = None
    return row


def make_per_case(
    n_cases: int = 60,
    method: str = "M",
    method_from_a: Transform | None = None,
    raters: tuple[str, ...] = ("A", "B", "C"),
    truth: bool = False,
    empty_share: float = 0.05,
    rater_noise_mm: float = 3.0,
    seed: int = 0,
) -> pd.DataFrame:
    """A per-case table with every (reference, test) pair the evaluator would score."""
    rng = np.random.default_rng(seed)
    method_from_a = method_from_a or identical
    rows = []
    for i in range(n_cases):
        case = f"case{i:03d}"
        empty = rng.random() < empty_share
        radius = 0.0 if empty else float(rng.lognormal(np.log(14), 0.45))
        true_outline = np.maximum(radius + smooth_noise(rng, 0.15 * radius), 0.5 * radius)
        outlines: dict[str, Outline] = {}
        for rater in raters:
            if empty:
                outlines[rater] = np.zeros(ANGLES)
                continue
            noise = smooth_noise(rng, rater_noise_mm)
            outlines[rater] = np.maximum(true_outline + RATER_BIAS_MM.get(rater, 0.0) + noise, 0)
        outlines[method] = method_from_a(outlines[raters[0]], rng)
        references = (*raters, "truth") if truth else raters
        if truth:
            outlines["truth"] = true_outline
        for reference in references:
            for test in (*raters, method):
                if test != reference:
                    row = outline_metrics(outlines[reference], outlines[test])
                    rows.append({"case": case, "reference": reference, "test": test, **row})
    return pd.DataFrame(rows, columns=list(PER_CASE_COLUMNS))


def identical(a: Outline, _rng: np.random.Generator) -> Outline:
    return a.copy()


def eroded(mm: float) -> Transform:
    """Rater A's mask eroded by `mm` all round (empty when nothing is left)."""
    return lambda a, _rng: np.maximum(a - mm, 0.0)


def eroded_share(share: float) -> Transform:
    """Rater A's mask shrunk to (1 - share) of its radius."""
    return lambda a, _rng: a * (1 - share)


def noisy(sd_mm: float) -> Transform:
    """Rater A's outline with extra smooth noise: unbiased on average but less precise."""
    return lambda a, rng: np.where(a > 0, np.maximum(a + smooth_noise(rng, sd_mm), 0.0), 0.0)


def run_metadata(n_cases: int, profile: str = "demo", dataset: str = "phantom") -> dict:
    """What `bench run` would pass to `build_results` (hashes are fixed fakes)."""
    cases = [f"case{i:03d}" for i in range(n_cases)]
    return {
        "dataset_name": dataset,
        "dataset_sha256": "a" * 64,
        "split_sha256": "b" * 64,
        "profile": profile,
        "adapter_version": "1.0",
        "git_commit": "0123456789abcdef0123456789abcdef01234567",
        "hardware": {"device": "2-core CPU", "cpu": "test"},
        "train_seconds_per_fold": {str(f): 60.0 + f for f in range(5)},
        "inference_seconds_per_case": {c: 1.5 for c in cases},
        "peak_memory_mb": 900.0,
        "prediction_sha256": {c: "c" * 64 for c in cases},
    }
