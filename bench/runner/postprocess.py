"""Postprocessing chosen the way nnU-Net chooses it, for every method: on held-out data.

nnU-Net (`nnunetv2.postprocessing.remove_connected_components`) compares, on cross-validation
predictions, the mean foreground Dice with and without "keep only the largest connected
component" and keeps whichever is better. The harness does the same per fold, on an inner
hold-out of the fold's training patients that the method never trained on (`holdout_cases`),
never on the fold's validation cases; and it widens the choice to a probability threshold, a
minimum component size and, where the profile allows, a restriction to the intracranial region
found in the image. The chosen `Postprocessing` turns each validation case's probability into
its mask in the common runner; the probability itself is written unchanged.

Written here rather than taken from nnU-Net: nnU-Net's version works on its own folder layout
and label files, and decides only the component rule, not a threshold.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from bench.io import write_json

COMPONENT_RULES = ("all", "largest")
# Intracranial region from the image: soft tissue and fluid, inside the head, cut off from
# the skull by one voxel.
SOFT_TISSUE_HU = (-15.0, 100.0)
BONE_HU = 150.0


@dataclass(frozen=True)
class Postprocessing:
    """How a lesion probability map becomes a mask."""

    threshold: float = 0.5  # lesion where the probability is above this
    components: str = "all"  # "all" or "largest" (nnU-Net's rule)
    min_component_ml: float = 0.0  # smaller components are removed
    intracranial: bool = False  # voxels outside the intracranial region are removed

    def apply(
        self, probability: np.ndarray, voxel_ml: float, image: np.ndarray | None = None
    ) -> np.ndarray:
        mask = probability > self.threshold
        if self.intracranial:
            if image is None:
                raise ValueError("the intracranial restriction needs the image")
            mask &= intracranial_region(image)
        if self.components == "largest" or self.min_component_ml > 0:
            labels, count = ndimage.label(mask)
            if count:
                sizes = np.bincount(labels.ravel())[1:] * voxel_ml
                keep = sizes >= self.min_component_ml
                if self.components == "largest":
                    keep &= np.arange(count) == int(np.argmax(sizes))
                mask = np.concatenate([[False], keep])[labels]
        return mask.astype(np.uint8)

    def describe(self) -> str:
        parts = [f"threshold {self.threshold:g}"]
        if self.components == "largest":
            parts.append("largest component only")
        if self.min_component_ml > 0:
            parts.append(f"components under {self.min_component_ml:g} ml removed")
        if self.intracranial:
            parts.append("intracranial region only")
        return ", ".join(parts)


def intracranial_region(image_hu: np.ndarray) -> np.ndarray:
    """The brain's side of the skull: the largest soft-tissue component not touching bone."""
    low, high = SOFT_TISSUE_HU
    bone = ndimage.binary_dilation(image_hu > BONE_HU)
    soft = (image_hu >= low) & (image_hu <= high) & ~bone
    soft = ndimage.binary_opening(soft, iterations=1)
    labels, count = ndimage.label(soft)
    if not count:
        return np.zeros(image_hu.shape, bool)
    largest = np.argmax(np.bincount(labels.ravel())[1:]) + 1
    region = labels == largest
    return np.stack([ndimage.binary_fill_holes(s) for s in region])  # per slice: ventricles


@dataclass(frozen=True)
class HoldoutCase:
    """One held-out case: its lesion probability, the reference mask and the image (HU)."""

    id: str
    probability: np.ndarray
    reference: np.ndarray
    image: np.ndarray
    voxel_ml: float


@dataclass(frozen=True)
class Choice:
    """The chosen postprocessing and the evidence for it (what the results file records)."""

    postprocessing: Postprocessing
    holdout_cases: tuple[str, ...]
    dice: float  # mean Dice on the hold-out with the choice
    plain_dice: float  # with the profile's threshold and nothing else
    candidates: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self.postprocessing),
            "holdout_cases": list(self.holdout_cases),
            "holdout_dice": round(self.dice, 6),
            "plain_dice": round(self.plain_dice, 6),
            "candidates": self.candidates,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Choice:
        names = {"threshold", "components", "min_component_ml", "intracranial"}
        return cls(
            Postprocessing(**{k: data[k] for k in names}),
            tuple(data["holdout_cases"]),
            float(data["holdout_dice"]),
            float(data["plain_dice"]),
            int(data.get("candidates", 0)),
        )


def dice(mask: np.ndarray, reference: np.ndarray) -> float:
    """Dice; 1 when both are empty (a lesion-free case predicted empty is right)."""
    total = int(mask.sum()) + int(reference.sum())
    return 1.0 if total == 0 else 2.0 * int((mask & reference).sum()) / total


def candidates(
    thresholds: Sequence[float],
    min_component_ml: Sequence[float],
    intracranial: bool,
) -> list[Postprocessing]:
    """Every combination, simplest first (ties go to the earlier, as nnU-Net keeps the
    unprocessed prediction unless a rule improves it)."""
    regions = (False, True) if intracranial else (False,)
    sizes = sorted({0.0, *(float(s) for s in min_component_ml)})
    return [
        Postprocessing(float(t), rule, size, region)
        for region, rule, size, t in itertools.product(regions, COMPONENT_RULES, sizes, thresholds)
        if not (rule == "largest" and size > 0)  # the largest survives any size filter
    ]


def choose(
    cases: Sequence[HoldoutCase], options: Sequence[Postprocessing], plain: Postprocessing
) -> Choice:
    """The option with the best mean Dice over `cases` (first of equals)."""
    if not cases:
        raise ValueError("no held-out case to choose postprocessing on")
    regions = (
        {c.id: intracranial_region(c.image) for c in cases}
        if any(o.intracranial for o in options)
        else {}
    )

    def mean_dice(option: Postprocessing) -> float:
        scores = []
        for case in cases:
            probability = case.probability
            if option.intracranial:  # the region once per case, not once per option
                probability = np.where(regions[case.id], probability, 0.0)
            unrestricted = Postprocessing(
                option.threshold, option.components, option.min_component_ml
            )
            mask = unrestricted.apply(probability, case.voxel_ml).astype(bool)
            scores.append(dice(mask, case.reference))
        return float(np.mean(scores))

    scored = [(mean_dice(o), i, o) for i, o in enumerate(options)]
    best, _, chosen = max(scored, key=lambda s: (s[0], -s[1]))
    return Choice(chosen, tuple(c.id for c in cases), best, mean_dice(plain), len(options))


def save_choice(choice: Choice, path: Path) -> None:
    write_json(choice.to_json(), path)


def choice_file(model_dir: Path, fold: int) -> Path:
    """Where a fold's choice is kept, beside its trained model (`bench run` and challenge
    mode read the same file, so both predict with the same rule)."""
    return Path(model_dir) / f"fold_{fold}.postprocessing.json"


def load_choice(path: Path) -> Choice:
    return Choice.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
