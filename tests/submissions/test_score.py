"""`bench score --submission`: coverage and geometry checks, then a results file."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from bench.errors import InputError
from bench.io import read_image, write_image
from bench.results import load_results
from bench.splits import load_split
from bench.submission_score import score_predictions

MANIFEST = """name = "given_masks"
authors = ["Tester"]
contact = "t@example.org"
description = "rater B's masks handed in as predictions"
license = "CC0-1.0"
kind = "predictions"
entry = "predictions"
"""


@pytest.fixture
def submission(tmp_path, check_dataset):
    folder = tmp_path / "given_masks"
    (folder / "predictions").mkdir(parents=True)
    (folder / "submission.toml").write_text(MANIFEST, encoding="utf-8")
    split = load_split(check_dataset)
    for case in sorted({c for f in split["folds"] for c in f["val"]}):
        shutil.copy(check_dataset.case(case).labels["B"], folder / "predictions" / f"{case}.nii.gz")
    return folder


def test_masks_equal_to_a_rater_score_perfectly_and_write_a_results_file(
    submission, check_dataset, tmp_path
):
    outcome = score_predictions(submission, check_dataset, tmp_path / "out")
    results = load_results(outcome.results_path)
    assert results.method.name == "given_masks" and results.profile == "submitted"
    table = results.per_case.to_frame()
    mine = table[(table["test"] == "given_masks") & (table["reference"] == "A")]
    assert len(mine) == len(check_dataset.cases)  # 2 folds: every case validated once
    lesion = mine[mine["V_ref"] > 0]
    assert len(lesion) and np.allclose(lesion["Dice"].astype(float), 1.0)


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
