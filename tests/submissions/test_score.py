"""`bench score --submission`: coverage and geometry checks, then a results file."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from bench.check_dataset import write_check_dataset
from bench.data.dataset import write_manifest
from bench.errors import InputError
from bench.io import read_image, write_image
from bench.results import load_results
from bench.splits import load_split, make_split, write_split
from bench.submission_score import score_predictions

MANIFEST = """name = "given_masks"
authors = ["Tester"]
contact = "t@example.org"
description = "rater B's masks handed in as predictions"
license = "CC0-1.0"
kind = "predictions"
entry = "predictions"
"""


def write_submission(folder, dataset):
    """A predictions submission of rater B's masks for every validation case of the split."""
    (folder / "predictions").mkdir(parents=True)
    (folder / "submission.toml").write_text(MANIFEST, encoding="utf-8")
    split = load_split(dataset)
    for case in split.validated_cases():
        shutil.copy(dataset.case(case).labels["B"], folder / "predictions" / f"{case}.nii.gz")
    return folder


@pytest.fixture
def submission(tmp_path, check_dataset):
    return write_submission(tmp_path / "given_masks", check_dataset)


def with_additional_scan(root):
    """The check dataset plus a second scan of patient c000: trained on, never validated."""
    dataset = write_check_dataset(root)
    manifest = dict(dataset.manifest)
    first = next(c for c in manifest["cases"] if c["id"] == "c000")
    extra = {**first, "id": "c000_s1", "scan_index": 1}
    manifest["cases"] = [*manifest["cases"], extra]
    dataset = write_manifest(root, manifest)
    write_split(dataset, make_split(dataset, n_folds=2))
    return dataset


def test_masks_equal_to_a_rater_score_perfectly_and_write_a_results_file(
    submission, check_dataset, tmp_path
):
    outcome = score_predictions(submission, check_dataset, tmp_path / "out")
    results = load_results(outcome.results_path)
    assert results.method.name == "given_masks" and results.profile == "submitted"
    assert results.hardware["device"] == "n/a (submitted)"  # not the machine that scored it
    table = results.per_case.to_frame()
    mine = table[(table["test"] == "given_masks") & (table["reference"] == "A")]
    assert len(mine) == len(check_dataset.cases)  # 2 folds: every case validated once
    lesion = mine[mine["V_ref"] > 0]
    assert len(lesion) and np.allclose(lesion["Dice"].astype(float), 1.0)


def test_additional_scans_need_no_prediction(tmp_path):
    """The phantom has extra scans (trained on, never validated): a complete submission of
    the validation cases must score (it was refused as missing the extra scans' masks)."""
    dataset = with_additional_scan(tmp_path / "data")
    assert "c000_s1" in {c for fold in load_split(dataset).folds for c in fold.train_additional}
    folder = write_submission(tmp_path / "given_masks", dataset)
    outcome = score_predictions(folder, dataset, tmp_path / "out")
    cases = set(load_results(outcome.results_path).per_case.to_frame()["case"])
    assert "c000_s1" not in cases and "c000" in cases


def test_a_missing_case_is_one_line(submission, check_dataset, tmp_path):
    next(iter(sorted((submission / "predictions").iterdir()))).unlink()
    with pytest.raises(InputError, match="no prediction for this case"):
        score_predictions(submission, check_dataset, tmp_path / "out")


def test_an_extra_case_is_one_line(submission, check_dataset, tmp_path):
    first = sorted((submission / "predictions").iterdir())[0]
    shutil.copy(first, submission / "predictions" / "zz_unknown.nii.gz")
    with pytest.raises(InputError, match="not a validation case"):
        score_predictions(submission, check_dataset, tmp_path / "out")


def test_a_mask_on_another_grid_is_one_line(submission, check_dataset, tmp_path):
    path = sorted((submission / "predictions").iterdir())[0]
    mask, geometry = read_image(path)
    shifted = type(geometry)(
        geometry.shape_zyx, geometry.spacing_xyz, (0.0, 0.0, 0.0), geometry.direction
    )
    write_image(mask, shifted, path)
    with pytest.raises(InputError, match=path.name.split(".")[0]) as error:
        score_predictions(submission, check_dataset, tmp_path / "out")
    assert "\n" not in str(error.value)
