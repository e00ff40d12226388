"""The fixed split: property tests over random patient/scan structures, and the file rules."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.data.dataset import Case, Dataset
from bench.errors import InputError
from bench.splits import STRATA, Split, load_split, make_split, split_hash, stratify, write_split


def in_memory_dataset(scans_per_patient: list[int], root: Path = Path("/nonexistent")) -> Dataset:
    cases = []
    for p, n_scans in enumerate(scans_per_patient):
        for s in range(n_scans):
            case_id = f"p{p}_s{s}"
            cases.append(Case(case_id, f"p{p}", s, root / f"{case_id}.nii.gz", {}))
    return Dataset(root, "mem", ("A",), "A", None, tuple(cases), "hash", {})


structures = st.lists(st.integers(min_value=1, max_value=3), min_size=5, max_size=60)
volume = st.one_of(st.just(0.0), st.floats(min_value=0.01, max_value=200.0))


@settings(max_examples=60, deadline=None)
@given(scans=structures, data=st.data(), seed=st.integers(0, 2**16), n_folds=st.integers(2, 6))
def test_split_invariants(scans, data, seed, n_folds):
    dataset = in_memory_dataset(scans)
    first = [c.id for c in dataset.cases if c.scan_index == 0]
    volumes = {case_id: data.draw(volume) for case_id in first}
    split = make_split(dataset, n_folds=n_folds, seed=seed, volumes_ml=volumes)
    patient_of = {c.id: c.patient for c in dataset.cases}

    validated = Counter(case for fold in split.folds for case in fold.val)
    assert validated == Counter(first), "every first scan validated exactly once"
    assert [fold.fold for fold in split.folds] == list(range(n_folds))

    for fold in split.folds:
        val_patients = {patient_of[c] for c in fold.val}
        train_patients = {patient_of[c] for c in fold.train + fold.train_additional}
        assert not val_patients & train_patients, "no patient in train and val of one fold"
        assert all(dataset.case(c).scan_index > 0 for c in fold.train_additional)
        assert all(dataset.case(c).scan_index == 0 for c in fold.train)
        expected_additional = {
            c.id for c in dataset.cases if c.scan_index > 0 and c.patient not in val_patients
        }
        assert set(fold.train_additional) == expected_additional

    for stratum in STRATA:
        counts = [sum(split.strata[c] == stratum for c in fold.val) for fold in split.folds]
        assert max(counts) - min(counts) <= 1, f"stratum {stratum} balanced within one case"
    sizes = [len(fold.val) for fold in split.folds]
    assert max(sizes) - min(sizes) <= 1


@settings(max_examples=20, deadline=None)
@given(scans=structures, seed=st.integers(0, 2**16))
def test_same_seed_same_bytes(scans, seed):
    dataset = in_memory_dataset(scans)
    volumes = {c.id: float(i % 7) for i, c in enumerate(dataset.cases) if c.scan_index == 0}
    split = make_split(dataset, seed=seed, volumes_ml=volumes)
    one = json.dumps(split.to_dict(), sort_keys=True)
    two = json.dumps(make_split(dataset, seed=seed, volumes_ml=volumes).to_dict(), sort_keys=True)
    assert one == two
    assert Split.from_dict(json.loads(one)) == split, "the document round-trips"
    assert split.split_sha256 == split_hash(json.loads(one)) == json.loads(one)["split_sha256"]


def test_strata_by_hand():
    assert stratify({"a": 0.0, "b": 1.0, "c": 2.0, "d": 3.0, "e": 10.0}) == {
        "a": "empty",
        "b": "small",
        "c": "small",  # median of non-empty (1, 2, 3, 10) is 2.5
        "d": "large",
        "e": "large",
    }


def test_split_file_round_trip_and_mismatch(tiny_dataset):
    split = make_split(tiny_dataset)
    path = write_split(tiny_dataset, split)
    assert load_split(tiny_dataset) == split
    assert path.read_bytes() == write_split(tiny_dataset, make_split(tiny_dataset)).read_bytes()

    other = Dataset(**{**tiny_dataset.__dict__, "content_sha256": "0" * 64})
    with pytest.raises(InputError, match="split belongs to another dataset"):
        load_split(other)

    edited = json.loads(path.read_text(encoding="utf-8"))
    edited["folds"][0]["val"].append("p001_s1")
    path.write_text(json.dumps(edited))
    with pytest.raises(InputError, match="edited after it was made"):
        load_split(tiny_dataset)


def test_a_split_is_immutable_and_its_folds_numbered_in_order(tiny_dataset):
    split = make_split(tiny_dataset, n_folds=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        split.seed = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        split.strata["p000"] = "large"  # type: ignore[index]
    with pytest.raises(ValueError, match=r"numbered 0\.\.2 in order"):
        dataclasses.replace(split, n_folds=3)
    assert split.fold_ids(1) is split.folds[1]
    with pytest.raises(InputError, match=r"no fold 2 \(folds 0\.\.1\)"):
        split.fold_ids(2)


def _valid(dataset: Dataset) -> dict:
    return make_split(dataset, n_folds=2).to_dict()


def _rehashed(document: dict) -> dict:
    return {**document, "split_sha256": split_hash(document)}


MALFORMED = {
    "a list": lambda _: [],
    "no fields": lambda _: {},
    "no folds": lambda d: _rehashed({k: v for k, v in _valid(d).items() if k != "folds"}),
    "a fold not an object": lambda d: _rehashed({**_valid(d), "folds": [0, 1]}),
    "val not a list": lambda d: _rehashed(
        {**_valid(d), "folds": [{**f, "val": "p000"} for f in _valid(d)["folds"]]}
    ),
    "seed a boolean": lambda d: _rehashed({**_valid(d), "seed": True}),
    "another format": lambda d: _rehashed({**_valid(d), "format_version": 2}),
    "folds out of order": lambda d: _rehashed({**_valid(d), "folds": _valid(d)["folds"][::-1]}),
    "an extra field": lambda d: _rehashed({**_valid(d), "note": "hand-made"}),
}


@pytest.mark.parametrize("kind", MALFORMED)
def test_a_malformed_split_file_is_one_line_naming_it(tiny_dataset, kind):
    path = tiny_dataset.root / "splits.json"
    path.write_text(json.dumps(MALFORMED[kind](tiny_dataset)), encoding="utf-8")
    with pytest.raises(InputError) as error:
        load_split(tiny_dataset)
    assert str(error.value).startswith(f"{path}: is not a split file: ")
    assert "\n" not in str(error.value)


def test_reference_volumes_drive_the_strata(tiny_dataset):
    split = make_split(tiny_dataset)
    # lesion = 2 slices x size^2 voxels of 2x2x5 mm (0.02 ml); size = patient % 4
    assert split.strata == {
        "p000": "empty",
        "p001": "small",
        "p002": "large",  # median of (2, 8, 18, 2) voxels is 5
        "p003": "large",
        "p004": "empty",
        "p005": "small",
    }
