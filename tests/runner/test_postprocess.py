"""Postprocessing chosen per fold on an inner hold-out of the training patients, applied by the
common runner to every method's validation cases, recorded in the results file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.adapter import FoldCases, MethodAdapter, Predictor
from bench.errors import BenchError
from bench.io import read_image
from bench.pipeline import fold_cases, holdout_ids, run_method
from bench.profiles import get_profile
from bench.runner import output_paths
from bench.runner.postprocess import (
    HoldoutCase,
    Postprocessing,
    candidates,
    choose,
    dice,
    intracranial_region,
)
from bench.splits import load_split, make_split, write_split
from tests.factories import write_tiny_dataset
from tests.runner.test_runner import toy_predictor


def blobs(shape=(8, 24, 24)) -> tuple[np.ndarray, np.ndarray]:
    """A probability map with the true lesion (0.95) and a smaller far blob (0.7)."""
    probability = np.zeros(shape, np.float32)
    reference = np.zeros(shape, bool)
    probability[2:6, 4:10, 4:10] = 0.95
    reference[2:6, 4:10, 4:10] = True
    probability[3:5, 16:19, 16:19] = 0.7
    return probability, reference


def test_largest_component_and_minimum_size_remove_the_far_blob():
    probability, reference = blobs()
    plain = Postprocessing(0.5).apply(probability, voxel_ml=0.01).astype(bool)
    assert dice(plain, reference) < 1.0
    for rule in (Postprocessing(0.5, "largest"), Postprocessing(0.5, "all", 0.2)):
        assert dice(rule.apply(probability, 0.01).astype(bool), reference) == 1.0
    assert dice(Postprocessing(0.8).apply(probability, 0.01).astype(bool), reference) == 1.0
    empty = np.zeros_like(reference)
    assert dice(empty, empty) == 1.0 and dice(reference, empty) == 0.0


def test_the_choice_is_the_best_on_the_holdout_and_the_plain_rule_when_nothing_helps():
    probability, reference = blobs()
    image = np.full(probability.shape, 30.0, np.float32)
    cases = [HoldoutCase("h", probability, reference, image, 0.01)]
    options = candidates((0.5, 0.8), (0.2,), intracranial=False)
    assert options[0] == Postprocessing(0.5)  # simplest first
    choice = choose(cases, options, Postprocessing(0.5))
    assert choice.dice == 1.0 and choice.plain_dice < 1.0
    assert choice.postprocessing == Postprocessing(0.8)  # the first of the perfect ones
    clean = np.where(reference, probability, 0.0)
    same = choose([HoldoutCase("h", clean, reference, image, 0.01)], options, Postprocessing(0.5))
    assert same.postprocessing == Postprocessing(0.5) and same.dice == same.plain_dice == 1.0


def test_intracranial_region_is_the_inside_of_the_skull():
    z, y, x = np.mgrid[:12, :40, :40]
    radius = np.sqrt((y - 20) ** 2 + (x - 20) ** 2)
    image = np.full((12, 40, 40), -1000.0, np.float32)  # air
    image[radius < 18] = 40.0  # scalp
    image[radius < 16] = 1000.0  # skull
    image[radius < 13] = 30.0  # brain
    image[radius < 3] = 5.0  # a ventricle
    region = intracranial_region(image)
    middle = radius[6]
    assert region[6][middle < 11].all() and not region[6][middle >= 14].any()
    rule = Postprocessing(0.5, intracranial=True)
    probability = np.where(radius > 16.5, 0.9, 0.0).astype(np.float32)  # scalp "lesion"
    assert not rule.apply(probability, 0.01, image).any()


@pytest.fixture
def dataset(tmp_path):
    data = write_tiny_dataset(tmp_path / "tiny", n_patients=10, second_scans=(1, 2))
    write_split(data, make_split(data, n_folds=2))
    return data


def test_the_holdout_is_some_of_the_folds_training_patients_and_nobody_trains_on_it(dataset):
    split = load_split(dataset)
    for fold in (0, 1):
        held = holdout_ids(split, fold, 0.34)
        train = set(split.fold_ids(fold).train)
        assert held and set(held) <= train and held == holdout_ids(split, fold, 0.34)
        assert len(held) == round(len(train) / 3) or len(held) == len(train) // 3 + 1
        cases = fold_cases(dataset, split, fold, holdout_share=0.34)
        patients = {dataset.case(c).patient for c in held}
        assert not {c.id for c in cases.train} & set(held)
        assert not {c.patient for c in cases.train_additional} & patients
        for entry in cases.split:  # every fold's ids, as nnU-Net's splits_final gets them
            assert not set(entry.train) & set(holdout_ids(split, entry.fold, 0.34))
    assert holdout_ids(split, 0, 0.0) == ()


def test_fold_cases_name_every_folds_holdout_apart_from_its_training_and_validation(dataset):
    split = load_split(dataset)
    cases = fold_cases(dataset, split, 1, holdout_share=0.34)
    assert len(cases.holdouts) == len(cases.split)
    for entry, held in zip(cases.split, cases.holdouts, strict=True):
        assert held == holdout_ids(split, entry.fold, 0.34)
        assert held and not set(held) & {*entry.train, *entry.val}
    assert fold_cases(dataset, split, 1).holdouts == ()  # no hold-out, nothing named


def test_a_folds_holdout_is_looked_up_by_fold_number(dataset):
    split = load_split(dataset)
    cases = fold_cases(dataset, split, 0, holdout_share=0.34)
    for entry in split.folds:
        assert cases.holdout(entry.fold) == holdout_ids(split, entry.fold, 0.34)
    with pytest.raises(BenchError, match="no fold 9"):
        cases.holdout(9)
    assert fold_cases(dataset, split, 0).holdout(0) == ()


class Remembering(MethodAdapter):
    """Predicts sigmoid(intensity / 10); remembers which cases it trained on."""

    def __init__(self):
        self._trained_on: list[set[str]] = []

    def fit(self, train_cases: FoldCases, fold, workdir, profile) -> Predictor:
        self._trained_on.append({c.id for c in (*train_cases.train, *train_cases.val)})
        return self.load(workdir, fold, profile)

    def load(self, workdir, fold, profile) -> Predictor:
        return toy_predictor(mirror_axes=(2,))


def test_run_method_chooses_on_the_holdout_applies_to_validation_and_records_it(dataset, tmp_path):
    profile = get_profile("smoke").with_overrides(
        postprocess_holdout=0.34, postprocess_thresholds=(0.5, 0.99), threads=1
    )
    method = Remembering()
    result = run_method(method, dataset, profile, tmp_path / "work", progress=False)
    split = load_split(dataset)
    for fold_result, trained in zip(result.folds, method._trained_on, strict=True):
        fold = fold_result.fold
        held = holdout_ids(split, fold, 0.34)
        assert not trained & set(held)
        choice_file = result.layout.postprocessing_file(fold)
        recorded = json.loads(choice_file.read_text(encoding="utf-8"))
        assert recorded == fold_result.postprocessing
        assert recorded["holdout_cases"] == list(held) and recorded["candidates"] == 4
        rule = Postprocessing(
            recorded["threshold"],
            recorded["components"],
            recorded["min_component_ml"],
            recorded["intracranial"],
        )
        for case in fold_result.predicted:
            mask_path, probability_path, _ = output_paths(result.layout.predictions_dir, case)
            probability, geometry = read_image(probability_path)
            expected = rule.apply(probability, geometry.voxel_volume_ml)
            np.testing.assert_array_equal(read_image(mask_path)[0], expected)
        for case in held:
            assert output_paths(result.layout.holdout_dir(fold), case)[0].is_file()
    choice_file.write_text(json.dumps({**recorded, "plain_dice": -1.0}), encoding="utf-8")
    again = run_method(method, dataset, profile, tmp_path / "work", progress=False)
    assert again.folds[-1].postprocessing["plain_dice"] == -1.0  # reused, not chosen again
