"""Scoring studies and folders from files: pairs, caching, geometry and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bench.evaluate.cache as cache_module
import bench.evaluate.study as study
from bench.errors import InputError
from bench.evaluate import score_folders, score_pair, score_study, study_pairs
from bench.io import Geometry, read_image, write_image
from bench.metric_names import LESION_NAMES, PER_CASE_COLUMNS
from tests.factories import TINY_GEOMETRY, write_tiny_dataset

ANISOTROPIC = Geometry(
    shape_zyx=(6, 20, 16),
    spacing_xyz=(0.45, 0.7, 5.0),
    origin_xyz=(1.0, -2.0, 3.0),
    direction=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
)


def write_predictions(dataset, folder: Path, grow: int = 1) -> Path:
    """A fake method: each case's rater-A cube grown by `grow` voxels in-plane."""
    for case in dataset.cases:
        label, geometry = read_image(case.labels["A"])
        prediction = label.copy()
        if label.any():
            z, y, x = np.nonzero(label)
            prediction[
                z.min() : z.max() + 1, y.min() : y.max() + 1 + grow, x.min() : x.max() + 2
            ] = 1
        write_image(prediction.astype(np.uint8), geometry, folder / f"{case.id}.nii.gz")
    return folder


@pytest.fixture
def tiny_study(tmp_path):
    dataset = write_tiny_dataset(tmp_path / "data", n_patients=3, second_scans=(), truth="truth")
    return dataset, write_predictions(dataset, tmp_path / "pred")


def test_study_pairs():
    pairs = study_pairs(("A", "B"), "truth", ("M",))
    assert pairs == (
        ("A", "B"),
        ("A", "M"),
        ("B", "A"),
        ("B", "M"),
        ("truth", "A"),
        ("truth", "B"),
        ("truth", "M"),
    )


def test_study_table(tiny_study, tmp_path):
    dataset, predictions = tiny_study
    table = score_study(dataset, {"M": predictions}, cache_dir=tmp_path / "cache", workers=2)
    assert list(table.columns) == list(PER_CASE_COLUMNS)
    assert len(table) == len(dataset.cases) * 13  # 3 raters + truth as references
    assert set(table["test"]) == {"A", "B", "C", "M"}
    assert set(table["reference"]) == {"A", "B", "C", "truth"}
    timing = table.attrs["timing"]
    assert timing["cases"] == 3 and timing["cached"] == 0 and timing["decode_s"] > 0
    # Raters agree exactly in the tiny dataset; the empty case says why it has NaNs.
    raters = table[(table.reference == "A") & (table.test == "B")]
    empty = raters[raters.V_ref == 0]
    assert (empty.nan_reason == "reference and test empty").all() and (empty.VS == 1.0).all()
    assert (raters[raters.V_ref > 0].Dice == 1.0).all()


def test_rerun_reads_the_cache_and_rescoring_only_what_changed(tiny_study, tmp_path, monkeypatch):
    dataset, predictions = tiny_study
    cache = tmp_path / "cache"
    first = score_study(dataset, {"M": predictions}, cache_dir=cache, workers=1)

    scored = []
    real = study.score_case

    def counting(job, settings):
        scored.append(job.case)
        return real(job, settings)

    monkeypatch.setattr(study, "score_case", counting)
    again = score_study(dataset, {"M": predictions}, cache_dir=cache, workers=1)
    assert scored == [] and again.attrs["timing"]["cached"] == 3
    pd.testing.assert_frame_equal(first, again)

    changed = dataset.cases[1]
    path = predictions / f"{changed.id}.nii.gz"
    empty = np.zeros(TINY_GEOMETRY.shape_zyx, np.uint8)
    write_image(empty, TINY_GEOMETRY, path)
    third = score_study(dataset, {"M": predictions}, cache_dir=cache, workers=1)
    assert scored == [changed.id]
    rows = third[(third.case == changed.id) & (third.test == "M")]
    assert (rows.V_test == 0).all()


def test_a_failure_keeps_the_cases_scored_before_it(tiny_study, tmp_path):
    dataset, predictions = tiny_study
    bad = dataset.cases[-1]
    mask = np.zeros(TINY_GEOMETRY.shape_zyx, np.uint8)
    mask[1, 1, 1] = 3
    write_image(mask, TINY_GEOMETRY, predictions / f"{bad.id}.nii.gz")
    cache = tmp_path / "cache"
    with pytest.raises(InputError, match=rf"{bad.id}.nii.gz: .*not binary"):
        score_study(dataset, {"M": predictions}, cache_dir=cache, workers=1)
    assert sorted(p.stem for p in cache.glob("*.json")) == [c.id for c in dataset.cases[:-1]]


def test_errors_in_worker_processes_keep_their_message(tiny_study, tmp_path):
    dataset, predictions = tiny_study
    (predictions / f"{dataset.cases[0].id}.nii.gz").write_bytes(b"not a nifti file")
    with pytest.raises(InputError, match="cannot be read"):
        score_study(dataset, {"M": predictions}, cache_dir=tmp_path / "cache", workers=2)


def test_missing_and_extra_predictions(tiny_study):
    dataset, predictions = tiny_study
    extra = predictions / "stranger.nii.gz"
    extra.write_bytes((predictions / f"{dataset.cases[0].id}.nii.gz").read_bytes())
    with pytest.raises(InputError, match="stranger.nii.gz: prediction for a case"):
        score_study(dataset, {"M": predictions})
    extra.unlink()
    (predictions / f"{dataset.cases[0].id}.nii.gz").unlink()
    with pytest.raises(InputError, match="no prediction for this case"):
        score_study(dataset, {"M": predictions})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"shape_zyx": (4, 12, 11)}, "shape"),
        ({"spacing_xyz": (2.0, 2.5, 5.0)}, "spacing"),
        ({"origin_xyz": (0.0, 0.0, 0.0)}, "origin"),
        ({"direction": (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)}, "direction"),
    ],
)
def test_grid_mismatch_names_the_file(tiny_study, change, message):
    dataset, predictions = tiny_study
    case = dataset.cases[0]
    geometry = Geometry(**{**TINY_GEOMETRY.__dict__, **change})
    write_image(np.zeros(geometry.shape_zyx, np.uint8), geometry, predictions / f"{case.id}.nii.gz")
    with pytest.raises(InputError, match=rf"case {case.id}: .*{case.id}.nii.gz: {message}"):
        score_study(dataset, {"M": predictions}, workers=1)


def test_fractional_mask_is_rejected(tmp_path):
    # (NaN cannot reach us through a file: SimpleITK's NIfTI reader turns it into 0; the
    # array path rejects NaN, see test_pair.)
    ref, test = tmp_path / "ref", tmp_path / "test"
    mask = np.zeros(TINY_GEOMETRY.shape_zyx, np.float32)
    write_image(mask, TINY_GEOMETRY, ref / "c1.nii.gz")
    mask[0, 0, 0] = 0.5
    write_image(mask, TINY_GEOMETRY, test / "c1.nii.gz")
    with pytest.raises(InputError, match="c1.nii.gz: mask is not binary"):
        score_folders(ref, test, workers=1)


def test_folders_need_matching_names(tmp_path):
    ref, test = tmp_path / "ref", tmp_path / "test"
    mask = np.zeros(TINY_GEOMETRY.shape_zyx, np.uint8)
    for name in ("a", "b"):
        write_image(mask, TINY_GEOMETRY, ref / f"{name}.nii.gz")
    write_image(mask, TINY_GEOMETRY, test / "a.nii.gz")
    with pytest.raises(InputError, match="b.nii.gz: has no test"):
        score_folders(ref, test)
    write_image(mask, TINY_GEOMETRY, test / "b.nii.gz")
    write_image(mask, TINY_GEOMETRY, test / "c.nii.gz")
    with pytest.raises(InputError, match="c.nii.gz: has no reference"):
        score_folders(ref, test)


def test_file_path_and_array_path_agree_on_anisotropic_grids(tmp_path):
    rng = np.random.default_rng(0)
    reference = np.zeros(ANISOTROPIC.shape_zyx, np.uint8)
    reference[1:4, 4:14, 3:10] = 1
    test = np.roll(reference, (1, 2, -1), axis=(0, 1, 2))
    test[rng.random(test.shape) < 0.02] = 1
    write_image(reference, ANISOTROPIC, tmp_path / "ref" / "case.nii.gz")
    write_image(test, ANISOTROPIC, tmp_path / "pred" / "case.nii.gz")
    from_files = score_folders(tmp_path / "ref", tmp_path / "pred", workers=1).iloc[0]
    # The header stores spacing as float32: the array path takes it from the header too.
    _, geometry = read_image(tmp_path / "ref" / "case.nii.gz")
    assert geometry.spacing_zyx_mm == pytest.approx((5.0, 0.7, 0.45))
    from_arrays = score_pair(reference, test, geometry.spacing_zyx_mm)
    for name, value in from_arrays.as_dict().items():
        assert from_files[name] == value or (
            value != value and from_files[name] != from_files[name]
        )
    # The header order matters: the (x, y, z) spacing would give other distances.
    swapped = score_pair(reference, test, geometry.spacing_xyz)
    assert swapped.HD95 != from_arrays.HD95


def test_a_temporary_left_by_a_killed_writer_is_not_a_case(tmp_path):
    from bench.evaluate.loading import nifti_files

    (tmp_path / "p003.nii.gz").write_bytes(b"mask")
    (tmp_path / ".p003.nii.gz.x1y2.tmp.nii.gz").write_bytes(b"half")  # atomic_path's name
    assert nifti_files(tmp_path) == {"p003": tmp_path / "p003.nii.gz"}


def test_same_grid_scores_a_headerless_prediction_on_the_image_header(tiny_study):
    dataset, predictions = tiny_study
    expected = score_study(dataset, {"M": predictions}, workers=1)
    case = dataset.cases[1]
    mask, _ = read_image(predictions / f"{case.id}.nii.gz")
    headerless = Geometry(
        **{**TINY_GEOMETRY.__dict__, "origin_xyz": (-100.0, -100.0, -100.0)},
    )
    write_image(mask, headerless, predictions / f"{case.id}.nii.gz")
    with pytest.raises(InputError, match=r"origin .* differs from the image's .*--same-grid"):
        score_study(dataset, {"M": predictions}, workers=1)
    scored = score_study(dataset, {"M": predictions}, workers=1, same_grid=True)
    pd.testing.assert_frame_equal(scored, expected)


def test_a_prediction_outside_the_cases_to_score_is_named(tiny_study):
    dataset, predictions = tiny_study
    first = dataset.cases[0].id
    with pytest.raises(InputError, match="prediction for a case that is not among the cases"):
        score_study(dataset, {"M": predictions}, cases=[first])


def test_rows_cached_before_lesion_counting_are_scored_again(tiny_study, tmp_path, monkeypatch):
    """A cache written by evaluator version 1 holds rows without the lesion-wise columns; the
    version in the key makes them stale instead of read back as NaN."""
    dataset, predictions = tiny_study
    cache = tmp_path / "cache"
    monkeypatch.setattr(cache_module, "EVALUATOR_VERSION", "1")
    score_study(dataset, {"M": predictions}, cache_dir=cache, workers=1)
    for path in cache.glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        data["rows"] = [{k: v for k, v in r.items() if k not in LESION_NAMES} for r in data["rows"]]
        path.write_text(json.dumps(data), encoding="utf-8")
    monkeypatch.undo()
    table = score_study(dataset, {"M": predictions}, cache_dir=cache, workers=1)
    assert table.attrs["timing"]["cached"] == 0
    counts = [name for name in LESION_NAMES if name != "LesionF1"]
    assert table.loc[:, counts].notna().all().all()
    assert table.LesionF1.notna().eq(table.V_ref + table.V_test > 0).all()  # NaN: no lesion
    raters = table[(table.reference == "A") & (table.test == "B") & (table.V_ref > 0)]
    assert (raters.LesionF1 == 1.0).all() and (raters.LesionFP == 0).all()
