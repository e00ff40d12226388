"""Calibration of a method's voxel probabilities against the truth and against the raters.

A probability p is calibrated when, of the voxels given p, a share p is lesion. Two targets:
the hidden truth (0/1, where the dataset has one) and the raters' agreement (the fraction of
raters labelling the voxel, so a voxel that two of three raters label has target 2/3). Per
target: a reliability diagram over `BINS` equal-width bins of [0, 1], the expected calibration
error ECE = sum over bins of (n_bin / n) * |mean p - mean target|, and the AUC of the voxel
probabilities (against the truth; against the raters' majority for the agreement target).

Region: most of a head is far from any lesion and trivially calibrated, so voxels are counted
only inside the bounding box of every label set's mask and of the method's mask (p >= 0.5),
grown by `MARGIN_MM` on each side and clipped to the image, per case; the cases' voxels are
pooled. The ECE is written by hand: no dependency of the project computes a binned ECE for a
fractional target. The AUC is the image-level one (`mann_whitney_auc`, ties counted half).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from bench.evaluate.image_level import mann_whitney_auc

BINS = 10
MARGIN_MM = 10.0
REGION = (
    f"bounding box of every label set's mask and the method's (p >= 0.5), grown by "
    f"{MARGIN_MM:g} mm, per case; voxels pooled over cases"
)
TRUTH, RATERS = "truth", "raters"


@dataclass(frozen=True)
class Calibration:
    """One target's reliability diagram, ECE and AUC over the pooled region voxels."""

    target: str  # "truth" or "raters"
    ece: float
    auc: float  # NaN when the binary target has one class only
    voxels: int
    cases: int
    bin_count: tuple[int, ...]  # voxels per bin, bins of width 1 / len(bin_count)
    bin_probability: tuple[float, ...]  # mean p per bin (NaN where empty)
    bin_observed: tuple[float, ...]  # mean target per bin (NaN where empty)
    region: str = field(default=REGION)


def bin_index(probability: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Bin of each probability: [0, 1/bins), ..., [1 - 1/bins, 1] (1.0 joins the last)."""
    return np.minimum((probability * bins).astype(np.int64), bins - 1)


def calibration(
    probability: np.ndarray,
    target: np.ndarray,
    name: str,
    cases: int = 1,
    bins: int = BINS,
    binary: np.ndarray | None = None,
) -> Calibration:
    """Reliability diagram, ECE and AUC of `probability` against `target` (same shape, values
    in [0, 1]). `binary` is the 0/1 label for the AUC (default: target > 0.5)."""
    p = np.asarray(probability, dtype=np.float64).ravel()
    y = np.asarray(target, dtype=np.float64).ravel()
    if p.shape != y.shape:
        raise ValueError(f"probability has {p.size} voxels, target {y.size}")
    if p.size and (np.nanmin(p) < 0 or np.nanmax(p) > 1 or np.isnan(p).any()):
        raise ValueError("probabilities must lie in [0, 1]")
    index = bin_index(p, bins)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(index, weights=p, minlength=bins) / count
        mean_y = np.bincount(index, weights=y, minlength=bins) / count
    filled = count > 0
    ece = float(np.sum(count[filled] * np.abs(mean_p[filled] - mean_y[filled])) / p.size)
    labels = y > 0.5 if binary is None else np.asarray(binary, dtype=bool).ravel()
    return Calibration(
        target=name,
        ece=ece if p.size else float("nan"),
        auc=mann_whitney_auc(p, labels),
        voxels=int(p.size),
        cases=cases,
        bin_count=tuple(int(c) for c in count),
        bin_probability=tuple(float(v) for v in mean_p),
        bin_observed=tuple(float(v) for v in mean_y),
    )


def region_slices(
    masks: Sequence[np.ndarray], spacing_zyx_mm: Sequence[float], margin_mm: float = MARGIN_MM
) -> tuple[slice, ...] | None:
    """The bounding box of the union of `masks`, grown by `margin_mm`; None when all are empty."""
    union = np.logical_or.reduce([np.asarray(m, dtype=bool) for m in masks])
    if not union.any():
        return None
    out = []
    for axis, spacing in enumerate(spacing_zyx_mm):
        other = tuple(a for a in range(union.ndim) if a != axis)
        present = np.flatnonzero(union.any(axis=other))
        grow = int(np.ceil(margin_mm / spacing))
        out.append(slice(max(present[0] - grow, 0), min(present[-1] + 1 + grow, union.shape[axis])))
    return tuple(out)


@dataclass
class CaseVoxels:
    """One case's region voxels: probability, truth (or None) and the raters' agreement."""

    probability: np.ndarray
    truth: np.ndarray | None
    agreement: np.ndarray


def case_voxels(
    probability: np.ndarray,
    raters: Mapping[str, np.ndarray],
    spacing_zyx_mm: Sequence[float],
    truth: np.ndarray | None = None,
) -> CaseVoxels:
    """The region's voxels of one case (see the module's docstring); empty when every mask is."""
    probability = np.asarray(probability, dtype=np.float32)
    label_sets = [np.asarray(m, dtype=bool) for m in raters.values()]
    if truth is not None:
        label_sets.append(np.asarray(truth, dtype=bool))
    box = region_slices([*label_sets, probability >= 0.5], spacing_zyx_mm)
    if box is None:
        empty = np.zeros(0, dtype=np.float32)
        return CaseVoxels(empty, None if truth is None else empty.astype(bool), empty)
    agreement = np.mean([m[box] for m in label_sets[: len(raters)]], axis=0, dtype=np.float64)
    return CaseVoxels(
        probability[box].ravel(),
        None if truth is None else np.asarray(truth, dtype=bool)[box].ravel(),
        agreement.ravel(),
    )


def pooled_calibration(voxels: Sequence[CaseVoxels], bins: int = BINS) -> dict[str, Calibration]:
    """Per target, the calibration of every case's region voxels pooled; the truth target only
    when every case has a truth."""
    if not voxels:
        return {}
    p = np.concatenate([v.probability for v in voxels])
    agreement = np.concatenate([v.agreement for v in voxels])
    out = {RATERS: calibration(p, agreement, RATERS, len(voxels), bins)}
    if all(v.truth is not None for v in voxels):
        truth = np.concatenate([v.truth for v in voxels]).astype(np.float64)
        out = {TRUTH: calibration(p, truth, TRUTH, len(voxels), bins), **out}
    return out


def dataset_calibration(dataset, predictions_dir, cases: Sequence[str]) -> dict[str, Calibration]:
    """Calibration of the probability maps `predictions_dir/probabilities/<case>.nii.gz` of
    `cases` against the dataset's raters (and truth); {} when any case has no probability map.
    """
    from pathlib import Path

    from bench.errors import InputError
    from bench.io import read_image
    from bench.predictions import output_paths

    paths = [output_paths(Path(predictions_dir), case).probability for case in cases]
    if not paths or not all(path.is_file() for path in paths):
        return {}
    voxels = []
    for case_id, path in zip(cases, paths, strict=True):
        case = dataset.case(case_id)
        probability, geometry = read_image(path, case_id)
        raters = {r: read_image(case.labels[r], case_id)[0] > 0 for r in dataset.raters}
        truth = read_image(case.labels[dataset.truth], case_id)[0] > 0 if dataset.truth else None
        if not np.all((probability >= 0) & (probability <= 1)):  # NaN fails too
            raise InputError("probabilities outside [0, 1] (or not a number)", case_id, path)
        voxels.append(case_voxels(probability, raters, geometry.spacing_zyx_mm, truth))
    return pooled_calibration(voxels)
