"""`bench evaluate` end to end: both forms, the summary, and bad input as one line, exit 2."""

from __future__ import annotations

import numpy as np
import pandas as pd

import bench.cli
from bench.io import Geometry, read_image, write_image
from bench.metric_names import PER_CASE_COLUMNS
from tests.evaluate.test_study import write_predictions
from tests.factories import TINY_GEOMETRY, write_tiny_dataset


def write_folders(tmp_path):
    ref, test = tmp_path / "experts", tmp_path / "model"
    for index in range(3):
        mask = np.zeros(TINY_GEOMETRY.shape_zyx, np.uint8)
        mask[1:3, 2 : 4 + index, 2:6] = 1
        write_image(mask, TINY_GEOMETRY, ref / f"case_{index}.nii.gz")
        mask[1:3, 2:8, 2:7] = 1
        write_image(mask, TINY_GEOMETRY, test / f"case_{index}.nii.gz")
    return ref, test


def test_folders(tmp_path, capsys):
    ref, test = write_folders(tmp_path)
    out = tmp_path / "scores.csv"
    argv = ["evaluate", "--reference", str(ref), "--test", str(test), "--out", str(out)]
    assert bench.cli.main([*argv, "--compat", "use", "--workers", "1"]) == 0
    table = pd.read_csv(out, keep_default_na=False, na_values=["NaN"])
    assert list(table.columns) == list(PER_CASE_COLUMNS)
    assert len(table) == 3 and set(table["reference"]) == {"experts"}
    printed = capsys.readouterr().out
    assert "median per metric" in printed and "image level at 20 ml" in printed
    assert (tmp_path / "scores.cache").is_dir()


def test_study(tmp_path, capsys):
    dataset = write_tiny_dataset(tmp_path / "data", n_patients=2, second_scans=())
    predictions = write_predictions(dataset, tmp_path / "nnunet_out")
    out = tmp_path / "study.csv"
    argv = ["evaluate", "--dataset", str(dataset.root), "--predictions", str(predictions)]
    assert bench.cli.main([*argv, "--method", "M", "--out", str(out), "--cache", "none"]) == 0
    table = pd.read_csv(out)
    assert set(table["test"]) == {"A", "B", "C", "M"}
    assert not (tmp_path / "study.cache").exists()
    assert "M" in capsys.readouterr().out


def test_bad_input_is_one_line_naming_the_file(tmp_path, capsys):
    ref, test = write_folders(tmp_path)
    (test / "case_1.nii.gz").write_bytes(b"garbage")
    out = tmp_path / "scores.csv"
    argv = ["evaluate", "--reference", str(ref), "--test", str(test), "--out", str(out)]
    assert bench.cli.main([*argv, "--workers", "1"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "case_1.nii.gz" in error[0] and "cannot be read" in error[0]
    assert not out.exists()
    # The case scored before the bad one is cached.
    assert [p.name for p in (tmp_path / "scores.cache").iterdir()] == ["case_0.json"]


def test_both_forms_at_once_is_an_error(tmp_path, capsys):
    argv = ["evaluate", "--reference", "a", "--dataset", "b", "--out", str(tmp_path / "x.csv")]
    assert bench.cli.main(argv) == 2
    assert "either" in capsys.readouterr().err


def test_study_scores_the_cases_the_split_validates(tmp_path, capsys):
    """A run's predictions folder holds the validation cases only: second scans are
    training-only and never predicted (the README's typical session)."""
    from bench.splits import make_split, write_split

    dataset = write_tiny_dataset(tmp_path / "data", n_patients=4, second_scans=(1, 2))
    write_split(dataset, make_split(dataset, n_folds=2))
    predictions = write_predictions(dataset, tmp_path / "run" / "predictions" / "net" / "demo")
    for second in ("p001_s1", "p002_s1"):
        (predictions / f"{second}.nii.gz").unlink()
    out = tmp_path / "study.csv"
    argv = ["evaluate", "--dataset", str(dataset.root), "--predictions", str(predictions)]
    assert bench.cli.main([*argv, "--out", str(out), "--workers", "1"]) == 0
    table = pd.read_csv(out)
    assert sorted(set(table["case"])) == ["p000", "p001", "p002", "p003"]
    assert set(table["test"]) == {"A", "B", "C", "net"}  # the method, not the profile
    printed = capsys.readouterr().out
    assert "scored 4 of the dataset's 6 cases (the validation cases of fold 0, 1)" in printed


def test_study_scores_the_folds_predicted_and_refuses_a_fold_in_part(tmp_path, capsys):
    from bench.splits import load_split, make_split, write_split

    dataset = write_tiny_dataset(tmp_path / "data", n_patients=4, second_scans=(1,))
    write_split(dataset, make_split(dataset, n_folds=2))
    fold_1 = load_split(dataset).fold_ids(1).val
    predictions = write_predictions(dataset, tmp_path / "demo")
    for case in [*fold_1, "p001_s1"]:
        (predictions / f"{case}.nii.gz").unlink()  # a run of fold 0 only
    out = tmp_path / "study.csv"
    argv = ["evaluate", "--dataset", str(dataset.root), "--predictions", str(predictions)]
    argv += ["--out", str(out), "--workers", "1", "--cache", "none"]
    assert bench.cli.main(argv) == 0
    assert set(pd.read_csv(out)["case"]) == set(load_split(dataset).fold_ids(0).val)
    assert "(the validation cases of fold 0; fold 1 not predicted)" in capsys.readouterr().out
    (predictions / f"{fold_1[0]}.nii.gz").write_bytes(b"")  # fold 1 now in part
    assert bench.cli.main(argv) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert (
        len(error) == 1 and "no prediction for this case, a validation case of fold 1" in error[0]
    )


def test_headerless_prediction_needs_same_grid(tmp_path, capsys):
    ref, test = write_folders(tmp_path)
    headerless = Geometry(
        TINY_GEOMETRY.shape_zyx,
        TINY_GEOMETRY.spacing_xyz,
        (-100.0, -100.0, -100.0),
        (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
    )
    mask, _ = read_image(test / "case_1.nii.gz")
    write_image(mask, headerless, test / "case_1.nii.gz")
    out = tmp_path / "scores.csv"
    argv = ["evaluate", "--reference", str(ref), "--test", str(test), "--out", str(out)]
    assert bench.cli.main([*argv, "--workers", "1", "--cache", "none"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "case_1.nii.gz: origin (-100, -100, -100) differs" in error[0]
    assert "--same-grid" in error[0]

    assert bench.cli.main([*argv, "--workers", "1", "--cache", "none", "--same-grid"]) == 0
    assert "--same-grid: origins and directions were not checked" in capsys.readouterr().out
    kept = pd.read_csv(out)
    write_image(mask, TINY_GEOMETRY, test / "case_1.nii.gz")  # the header restored
    assert bench.cli.main([*argv, "--workers", "1", "--cache", "none"]) == 0
    pd.testing.assert_frame_equal(kept, pd.read_csv(out))


def test_same_grid_still_refuses_another_shape_or_spacing(tmp_path, capsys):
    ref, test = write_folders(tmp_path)
    mask, _ = read_image(test / "case_0.nii.gz")
    wrong = Geometry(
        TINY_GEOMETRY.shape_zyx,
        (2.0, 2.5, 5.0),
        (-100.0, -100.0, -100.0),
        TINY_GEOMETRY.direction,
    )
    write_image(mask, wrong, test / "case_0.nii.gz")
    out = tmp_path / "scores.csv"
    argv = ["evaluate", "--reference", str(ref), "--test", str(test), "--out", str(out)]
    assert bench.cli.main([*argv, "--workers", "1", "--cache", "none", "--same-grid"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "case_0.nii.gz: spacing (2, 2.5, 5) differs" in error[0]
    assert bench.cli.main([*argv, "--workers", "1", "--cache", "none"]) == 2
    assert "--same-grid" not in capsys.readouterr().err  # it would not help here


def test_spacing_in_metres_is_one_line_naming_the_file(tmp_path, capsys):
    ref, test = write_folders(tmp_path)
    metres = Geometry(**{**TINY_GEOMETRY.__dict__, "spacing_xyz": (0.0009, 0.0009, 0.005)})
    mask = np.zeros(metres.shape_zyx, np.uint8)
    mask[1:3, 2:5, 2:6] = 1
    for folder in (ref, test):
        write_image(mask, metres, folder / "case_1.nii.gz")
    out = tmp_path / "scores.csv"
    argv = ["evaluate", "--reference", str(ref), "--test", str(test), "--out", str(out)]
    assert bench.cli.main([*argv, "--workers", "1"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "case case_1" in error[0] and "case_1.nii.gz" in error[0]
    assert "outside 0.01-50 mm" in error[0] and "metres" in error[0]
