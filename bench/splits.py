"""The fixed patient-level split: 5 folds, seeded, stratified by reference lesion volume.

Rules (DESIGN.md): every patient's first scan (scan_index 0) is validated in exactly one fold;
additional scans are never validated and are offered for training only in folds where their
patient is not validated. The file records the dataset's content hash: a split that does not
match its dataset is an error, never a silent re-split.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bench.adapter import FoldIds
from bench.data.dataset import SPLITS_NAME, Dataset
from bench.errors import InputError

SPLIT_FORMAT_VERSION = 1
STRATA = ("empty", "small", "large")


def reference_volumes_ml(dataset: Dataset) -> dict[str, float]:
    """Reference-rater lesion volume of every first scan, in ml (reads the label files)."""
    from bench.io import read_image

    volumes = {}
    for case in dataset.cases:
        if case.scan_index != 0:
            continue
        array, geometry = read_image(case.labels[dataset.reference_rater], case.id)
        volumes[case.id] = float(np.count_nonzero(array)) * geometry.voxel_volume_ml
    return volumes


def stratify(volumes_ml: Mapping[str, float]) -> dict[str, str]:
    """empty / small (at or below the median non-empty volume) / large."""
    non_empty = [v for v in volumes_ml.values() if v > 0]
    median = float(np.median(non_empty)) if non_empty else 0.0
    return {
        case: "empty" if v <= 0 else ("small" if v <= median else "large")
        for case, v in volumes_ml.items()
    }


def assign_folds(strata: Mapping[str, str], n_folds: int = 5, seed: int = 0) -> dict[str, int]:
    """Deal each stratum's cases, shuffled by `seed`, round-robin over the folds.

    The deal continues across strata where the previous one stopped, so each stratum and the
    fold sizes overall are balanced to within one case.
    """
    rng = np.random.default_rng(seed)
    fold_of: dict[str, int] = {}
    next_fold = 0
    for stratum in STRATA:
        members = sorted(case for case, s in strata.items() if s == stratum)
        for case in rng.permutation(np.array(members, dtype=object)) if members else []:
            fold_of[str(case)] = next_fold
            next_fold = (next_fold + 1) % n_folds
    return fold_of


def make_split(
    dataset: Dataset,
    n_folds: int = 5,
    seed: int = 0,
    volumes_ml: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Compute the split document for `dataset` (pure: no file is written)."""
    if volumes_ml is None:
        volumes_ml = reference_volumes_ml(dataset)
    strata = stratify(volumes_ml)
    fold_of_first_scan = assign_folds(strata, n_folds, seed)
    patient_fold = {
        case.patient: fold_of_first_scan[case.id] for case in dataset.cases if case.scan_index == 0
    }
    folds = []
    for fold in range(n_folds):
        train, additional, val = [], [], []
        for case in dataset.cases:
            validated_here = patient_fold[case.patient] == fold
            if case.scan_index == 0:
                (val if validated_here else train).append(case.id)
            elif not validated_here:
                additional.append(case.id)
        folds.append(
            {
                "fold": fold,
                "train": sorted(train),
                "train_additional": sorted(additional),
                "val": sorted(val),
            }
        )
    split = {
        "format_version": SPLIT_FORMAT_VERSION,
        "dataset_name": dataset.name,
        "dataset_sha256": dataset.content_sha256,
        "n_folds": n_folds,
        "seed": seed,
        "stratification": "reference rater volume: empty / <= median non-empty / > median",
        "strata": dict(sorted(strata.items())),
        "folds": folds,
    }
    split["split_sha256"] = split_hash(split)
    return split


def split_hash(split: Mapping[str, Any]) -> str:
    body = {k: v for k, v in split.items() if k != "split_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def write_split(dataset: Dataset, split: Mapping[str, Any]) -> Path:
    from bench.io import write_json

    path = dataset.root / SPLITS_NAME
    write_json(dict(split), path)
    return path


def load_split(dataset: Dataset, path: str | Path | None = None) -> dict[str, Any]:
    """Read the frozen split and prove it belongs to `dataset`."""
    path = Path(path) if path else dataset.root / SPLITS_NAME
    if not path.is_file():
        raise InputError(
            "split file is missing: run `bench data split` on the dataset first", file=path
        )
    try:
        split = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(f"is not valid JSON ({error})", file=path) from error
    if split.get("split_sha256") != split_hash(split):
        raise InputError("split was edited after it was made (split_sha256 mismatch)", file=path)
    if split.get("dataset_sha256") != dataset.content_sha256:
        theirs, ours = str(split.get("dataset_sha256"))[:12], str(dataset.content_sha256)[:12]
        raise InputError(
            f"split belongs to another dataset (dataset_sha256 {theirs} != {ours}): "
            "re-split explicitly with `bench data split`",
            file=path,
        )
    known = {case.id for case in dataset.cases}
    for fold in split["folds"]:
        for part in ("train", "train_additional", "val"):
            unknown = sorted(set(fold[part]) - known)
            if unknown:
                raise InputError(
                    f"fold {fold['fold']} {part} names unknown case(s) {unknown[:3]}", file=path
                )
    return split


def fold_ids(split: Mapping[str, Any], fold: int) -> FoldIds:
    """The train / train_additional / val case ids of one fold; a missing fold is an error."""
    for entry in split["folds"]:
        if entry["fold"] == fold:
            return _ids(entry)
    raise InputError(f"the split has no fold {fold} (folds 0..{split['n_folds'] - 1})")


def every_fold(split: Mapping[str, Any]) -> tuple[FoldIds, ...]:
    return tuple(_ids(entry) for entry in split["folds"])


def validated_cases(split: Mapping[str, Any]) -> list[str]:
    """Every patient's first scan once: the cases the folds validate, sorted."""
    return sorted({case for fold in every_fold(split) for case in fold.val})


def _ids(entry: Mapping[str, Any]) -> FoldIds:
    return FoldIds(
        int(entry["fold"]),
        tuple(entry["train"]),
        tuple(entry["train_additional"]),
        tuple(entry["val"]),
    )
