"""Lesion-wise detection: connected components of reference and test, matched one to one.

A stroke reader counts lesions, and Dice hides a missed small lesion behind a large one. The
lesions of a mask are its connected components under 26-connectivity (voxels touching by a
face, an edge or a corner are one lesion), the instance approximation of panoptica and of
ISLES'24's `cc3d` call. A reference lesion and a test lesion match when their intersection
over union exceeds 0.5 (panoptica's default matching of semantic input, there IoU >= 0.5).
Components of one mask are disjoint, so a lesion has at most one partner above 0.5 and the
matching is one to one without any choice to make: greedy, optimal and naive matching agree.
At IoU >= 0.5 a lesion cut into two exact halves would have two partners and need a tie-break.

Why not ISLES'24's rule (a reference lesion is detected when anything overlaps it, a test
lesion is false when it touches no reference lesion): one test blob covering the whole brain
would then detect every lesion with no false positive. Under the IoU rule a lesion split in two
halves is a miss and two false positives unless one half carries most of it; the volume-wise
metrics say how much of it was found.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from bench.evaluate.masks import PreparedMask, voxel_volume_ml

MATCH_IOU = 0.5  # a pair matches when IoU > MATCH_IOU
# Reference lesion volume bins, ml: < 1, 1 to 10 (inclusive), > 10; names as in metric_names.
SIZE_BINS: tuple[tuple[str, float, float], ...] = (
    ("lt1ml", 0.0, 1.0),
    ("1to10ml", 1.0, 10.0),
    ("gt10ml", 10.0, np.inf),
)
_CONNECTIVITY_26 = np.ones((3, 3, 3), dtype=bool)
NAN = float("nan")


@dataclass(frozen=True)
class LesionMatch:
    """Each lesion's volume (ml) and whether it found a partner, for both masks."""

    ref_ml: np.ndarray
    test_ml: np.ndarray
    ref_matched: np.ndarray  # bool, one per reference lesion
    test_matched: np.ndarray

    def swapped(self) -> LesionMatch:
        return LesionMatch(self.test_ml, self.ref_ml, self.test_matched, self.ref_matched)

    def metrics(self) -> dict[str, float]:
        """The per-case lesion-wise columns (see bench.metric_names.LESION_METRICS)."""
        tp = int(self.ref_matched.sum())
        fn, fp = self.ref_ml.size - tp, self.test_ml.size - tp
        out = {
            "LesionTP": float(tp),
            "LesionFP": float(fp),
            "LesionFN": float(fn),
            "LesionF1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else NAN,
            "LesionCountDiff": float(abs(self.ref_ml.size - self.test_ml.size)),
        }
        for name, low, high in SIZE_BINS:
            in_bin = _in_bin(self.ref_ml, low, high)
            out[f"LesionTP_{name}"] = float((in_bin & self.ref_matched).sum())
            out[f"LesionFN_{name}"] = float((in_bin & ~self.ref_matched).sum())
        return out


def _in_bin(volumes_ml: np.ndarray, low: float, high: float) -> np.ndarray:
    """Which volumes fall in a bin: < 1 ml, 1-10 ml (both ends included), > 10 ml."""
    if low == 0.0:
        return volumes_ml < high
    if np.isinf(high):
        return volumes_ml > low
    return (volumes_ml >= low) & (volumes_ml <= high)


def label_lesions(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components under 26-connectivity: (labels 1..n, n)."""
    return ndimage.label(mask, structure=_CONNECTIVITY_26)


def match_lesions(reference: PreparedMask, test: PreparedMask) -> LesionMatch:
    """Label both masks on the box around both (the only voxels that can hold a lesion) and
    match their lesions by IoU."""
    voxel_ml = voxel_volume_ml(reference.spacing_zyx_mm)
    boxes = np.concatenate([reference.boxes, test.boxes])
    if boxes.size == 0:
        none = np.zeros(0)
        return LesionMatch(none, none, none.astype(bool), none.astype(bool))
    lo, hi = boxes[:, :3].min(axis=0), boxes[:, 3:].max(axis=0) + 1
    crop = tuple(slice(a, b) for a, b in zip(lo.tolist(), hi.tolist(), strict=True))
    ref_labels, n_ref = label_lesions(reference.bytes_zyx[crop])
    test_labels, n_test = label_lesions(test.bytes_zyx[crop])
    ref_voxels = np.bincount(ref_labels.ravel(), minlength=n_ref + 1)[1:]
    test_voxels = np.bincount(test_labels.ravel(), minlength=n_test + 1)[1:]
    both = (ref_labels > 0) & (test_labels > 0)
    pairs = ref_labels[both].astype(np.int64) * (n_test + 1) + test_labels[both]
    codes, shared = np.unique(pairs, return_counts=True)
    r, t = np.divmod(codes, n_test + 1)
    iou = shared / (ref_voxels[r - 1] + test_voxels[t - 1] - shared)
    ref_matched, test_matched = np.zeros(n_ref, bool), np.zeros(n_test, bool)
    ref_matched[r[iou > MATCH_IOU] - 1] = True
    test_matched[t[iou > MATCH_IOU] - 1] = True
    return LesionMatch(ref_voxels * voxel_ml, test_voxels * voxel_ml, ref_matched, test_matched)
