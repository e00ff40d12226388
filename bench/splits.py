"""The fixed patient-level split: 5 folds, seeded, stratified by reference lesion volume.

Rules (DESIGN.md): every patient's first scan (scan_index 0) is validated in exactly one fold;
additional scans are never validated and are offered for training only in folds where their
patient is not validated. The file records the dataset's content hash: a split that does not
match its dataset is an error, never a silent re-split.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from bench.adapter import FoldIds
from bench.data.dataset import SPLITS_NAME, Dataset
from bench.errors import InputError, short_repr

SPLIT_FORMAT_VERSION = 1
STRATA = ("empty", "small", "large")
STRATIFICATION = "reference rater volume: empty / <= median non-empty / > median"
_FOLD_PARTS = ("train", "train_additional", "val")


@dataclass(frozen=True)
class Split:
    """The frozen split as it travels through the code; `to_dict` / `from_dict` are its file.

    `strata` maps each first scan to its stratum; `folds` are numbered 0..n_folds-1 in order.
    `split_sha256` is computed from the content, so a Split cannot disagree with its hash.
    """

    dataset_name: str
    dataset_sha256: str
    n_folds: int
    seed: int
    strata: Mapping[str, str]
    folds: tuple[FoldIds, ...]

    def __post_init__(self) -> None:
        """Freeze `strata` too, and refuse folds that a split file could not hold."""
        object.__setattr__(self, "strata", MappingProxyType(dict(self.strata)))
        if [fold.fold for fold in self.folds] != list(range(self.n_folds)):
            raise ValueError(f"folds must be numbered 0..{self.n_folds - 1} in order")

    @functools.cached_property
    def split_sha256(self) -> str:
        """Hashed once per split (the fields are frozen)."""
        return self.to_dict()["split_sha256"]

    def fold_ids(self, fold: int) -> FoldIds:
        """The train / train_additional / val case ids of one fold; a missing fold is an error."""
        for entry in self.folds:
            if entry.fold == fold:
                return entry
        raise InputError(f"the split has no fold {fold} (folds 0..{self.n_folds - 1})")

    def validated_cases(self) -> list[str]:
        """Every patient's first scan once: the cases the folds validate, sorted."""
        return sorted({case for fold in self.folds for case in fold.val})

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of splits.json, `split_sha256` included."""
        body = {
            "format_version": SPLIT_FORMAT_VERSION,
            "dataset_name": self.dataset_name,
            "dataset_sha256": self.dataset_sha256,
            "n_folds": self.n_folds,
            "seed": self.seed,
            "stratification": STRATIFICATION,
            "strata": dict(sorted(self.strata.items())),
            "folds": [_fold_dict(fold) for fold in self.folds],
        }
        return {**body, "split_sha256": split_hash(body)}

    @classmethod
    def from_dict(cls, document: Any) -> Split:
        """The Split a splits.json document holds; ValueError says what is malformed."""
        if not isinstance(document, dict):
            raise ValueError(f"not a JSON object but {type(document).__name__}")
        version = _typed(document, "format_version", int)
        if version != SPLIT_FORMAT_VERSION:
            raise ValueError(f"format_version is {version}, not {SPLIT_FORMAT_VERSION}")
        name = _typed(document, "dataset_name", str)
        sha256 = _typed(document, "dataset_sha256", str)
        n_folds = _typed(document, "n_folds", int)
        seed = _typed(document, "seed", int)
        _typed(document, "stratification", str)
        strata = _typed(document, "strata", dict)
        if not all(isinstance(v, str) for v in strata.values()):
            raise ValueError("strata must map case ids to stratum names")
        folds = tuple(_fold_from_dict(entry) for entry in _typed(document, "folds", list))
        _typed(document, "split_sha256", str)
        return cls(name, sha256, n_folds, seed, strata, folds)


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
) -> Split:
    """Compute the split of `dataset` (pure: no file is written)."""
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
            FoldIds(fold, tuple(sorted(train)), tuple(sorted(additional)), tuple(sorted(val)))
        )
    return Split(
        dataset.name,
        dataset.content_sha256,
        n_folds,
        seed,
        dict(sorted(strata.items())),
        tuple(folds),
    )


def _fold_dict(fold: FoldIds) -> dict[str, Any]:
    return {"fold": fold.fold, **{part: list(getattr(fold, part)) for part in _FOLD_PARTS}}


def _fold_from_dict(entry: Any) -> FoldIds:
    if not isinstance(entry, dict):
        raise ValueError(f"a fold must be a JSON object, got {short_repr(entry)}")
    number = _typed(entry, "fold", int)
    parts = []
    for part in _FOLD_PARTS:
        ids = _typed(entry, part, list, where=f"fold {number} ")
        if not all(isinstance(case, str) for case in ids):
            raise ValueError(f"fold {number} {part} must list case ids")
        parts.append(tuple(ids))
    return FoldIds(number, *parts)


def _typed(document: dict[str, Any], key: str, kind: type, where: str = "") -> Any:
    """`document[key]`, which must be a `kind` (a bool is no int here, as JSON has both)."""
    if key not in document:
        raise ValueError(f"{where}{key} is missing")
    value = document[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        name = _JSON_NAMES[kind]
        raise ValueError(f"{where}{key} must be a JSON {name}, got {short_repr(value)}")
    return value


_JSON_NAMES = {int: "integer", str: "string", dict: "object", list: "array"}


def split_hash(document: Mapping[str, Any]) -> str:
    """sha256 of the document without its own `split_sha256`, keys sorted (the file format)."""
    body = {k: v for k, v in document.items() if k != "split_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def write_split(dataset: Dataset, split: Split) -> Path:
    from bench.io import write_json

    path = dataset.root / SPLITS_NAME
    write_json(split.to_dict(), path)
    return path


def load_split(dataset: Dataset, path: str | Path | None = None) -> Split:
    """Read the frozen split and prove it belongs to `dataset`."""
    path = Path(path) if path else dataset.root / SPLITS_NAME
    document = _read_json(path)
    try:
        split = Split.from_dict(document)
    except ValueError as error:
        raise InputError(f"is not a split file: {error}", file=path) from error
    if document["split_sha256"] != split_hash(document):
        raise InputError("split was edited after it was made (split_sha256 mismatch)", file=path)
    if document["split_sha256"] != split.split_sha256:  # an extra field, say, hashed along
        raise InputError(
            "is not a split file: it holds more or other than `bench data split` writes",
            file=path,
        )
    if split.dataset_sha256 != dataset.content_sha256:
        theirs, ours = split.dataset_sha256[:12], str(dataset.content_sha256)[:12]
        raise InputError(
            f"split belongs to another dataset (dataset_sha256 {theirs} != {ours}): "
            "re-split explicitly with `bench data split`",
            file=path,
        )
    _check_cases_known(split, dataset, path)
    return split


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise InputError(
            "split file is missing: run `bench data split` on the dataset first", file=path
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(f"is not valid JSON ({error})", file=path) from error


def _check_cases_known(split: Split, dataset: Dataset, path: Path) -> None:
    known = {case.id for case in dataset.cases}
    for fold in split.folds:
        for part in _FOLD_PARTS:
            unknown = sorted(set(getattr(fold, part)) - known)
            if unknown:
                raise InputError(
                    f"fold {fold.fold} {part} names unknown case(s) {unknown[:3]}", file=path
                )
