"""Dataset v1: loading, hashing and validation of every kind of bad input, one line each."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from bench.data.dataset import load_dataset
from bench.data.validate import validate_dataset
from bench.errors import InputError, ValidationError
from bench.io import read_image, write_image
from tests.factories import TINY_GEOMETRY, write_tiny_dataset


def edit_manifest(root: Path, change) -> None:
    path = root / "dataset.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    change(manifest)
    path.write_text(json.dumps(manifest))


def problems_of(root: Path) -> list[str]:
    return [str(p) for p in validate_dataset(load_dataset(root))]


def test_a_clean_dataset_loads_and_validates(tiny_dataset):
    assert validate_dataset(tiny_dataset) == []
    assert tiny_dataset.raters == ("A", "B", "C")
    assert tiny_dataset.independent_raters == ("B", "C")
    assert len(tiny_dataset.cases) == 7
    assert tiny_dataset.case("p001_s1").scan_index == 1


def test_content_hash_is_deterministic_and_detects_a_changed_file(tmp_path):
    first = write_tiny_dataset(tmp_path / "one")
    second = write_tiny_dataset(tmp_path / "two")
    assert first.content_sha256 == second.content_sha256
    label = first.case("p002").labels["B"]
    array, geometry = read_image(label)
    array[0, 0, 0] = 1
    write_image(array, geometry, label)
    assert any("content_sha256 does not match" in p for p in problems_of(first.root))


def test_missing_manifest_and_invalid_json(tmp_path):
    with pytest.raises(InputError, match="dataset.json is missing"):
        load_dataset(tmp_path)
    (tmp_path / "dataset.json").write_text("{not json")
    with pytest.raises(InputError, match="is not valid JSON"):
        load_dataset(tmp_path)


def test_reference_rater_must_be_a_rater(tiny_dataset):
    edit_manifest(tiny_dataset.root, lambda m: m.update(reference_rater="Z"))
    with pytest.raises(ValidationError, match="reference_rater 'Z' is not one of the raters"):
        load_dataset(tiny_dataset.root)


def test_duplicate_case_ids(tiny_dataset):
    edit_manifest(tiny_dataset.root, lambda m: m["cases"].append(dict(m["cases"][0])))
    with pytest.raises(ValidationError, match="case p000: .*duplicate case id"):
        load_dataset(tiny_dataset.root)


def test_a_rater_missing_for_a_case(tiny_dataset):
    edit_manifest(tiny_dataset.root, lambda m: m["cases"][2]["labels"].pop("C"))
    with pytest.raises(ValidationError, match="case p002: .*no label for rater 'C'"):
        load_dataset(tiny_dataset.root)


def test_every_structural_problem_is_reported_not_just_the_first(tiny_dataset):
    def break_two(manifest):
        manifest["cases"][1]["labels"].pop("B")
        del manifest["cases"][3]["image"]

    edit_manifest(tiny_dataset.root, break_two)
    with pytest.raises(ValidationError) as error:
        load_dataset(tiny_dataset.root)
    lines = str(error.value).splitlines()
    assert len(lines) == 2
    assert "case p001" in lines[1] or "case p001" in lines[0]


def test_missing_image_file(tiny_dataset):
    tiny_dataset.case("p003").image.unlink()
    assert problems_of(tiny_dataset.root) == [
        f"case p003: {tiny_dataset.root / 'images/p003.nii.gz'}: file is missing"
    ]


def test_extra_unlisted_file(tiny_dataset):
    array, geometry = read_image(tiny_dataset.case("p000").image)
    write_image(array, geometry, tiny_dataset.root / "images" / "stray.nii.gz")
    (problem,) = problems_of(tiny_dataset.root)
    assert "stray.nii.gz" in problem and "not listed in the manifest" in problem


def test_corrupted_file(tiny_dataset):
    path = tiny_dataset.case("p001").labels["A"]
    path.write_bytes(path.read_bytes()[:40])
    (problem,) = problems_of(tiny_dataset.root)
    assert problem.startswith(f"case p001: {path}: cannot be read as an image")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda img: img.SetSpacing((2.0, 2.5, 5.0)), "spacing (2, 2.5, 5) differs"),
        (lambda img: img.SetOrigin((0.0, 0.0, 0.0)), "origin (0, 0, 0) differs"),
        (
            lambda img: img.SetDirection((0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)),
            "direction",
        ),
    ],
)
def test_label_geometry_mismatch(tiny_dataset, change, expected):
    path = tiny_dataset.case("p002").labels["B"]
    image = sitk.ReadImage(str(path))
    change(image)
    sitk.WriteImage(image, str(path))
    (problem,) = problems_of(tiny_dataset.root)
    assert f"case p002: {path}: rater B label: {expected}" in problem


def test_label_shape_mismatch(tiny_dataset):
    path = tiny_dataset.case("p002").labels["A"]
    sitk.WriteImage(sitk.Image(10, 12, 3, sitk.sitkUInt8), str(path))
    (problem,) = problems_of(tiny_dataset.root)
    assert "rater A label: shape (3, 12, 10) differs from the image's (4, 12, 10)" in problem


def test_non_binary_label(tiny_dataset):
    path = tiny_dataset.case("p001").labels["C"]
    array, geometry = read_image(path)
    array[0, 0, 0] = 2
    write_image(array, geometry, path)
    (problem,) = problems_of(tiny_dataset.root)
    assert "rater C label is not binary: values [0, 1, 2]" in problem


def test_nan_in_image(tiny_dataset):
    path = tiny_dataset.case("p004").image
    array = np.full(TINY_GEOMETRY.shape_zyx, 20.0, np.float32)
    array[1, 1, 1] = np.nan
    array[2, 2, 2] = np.inf
    write_image(array, TINY_GEOMETRY, path)
    (problem,) = problems_of(tiny_dataset.root)
    assert problem == f"case p004: {path}: image has 2 NaN/Inf voxel(s)"


def test_4d_image(tiny_dataset):
    path = tiny_dataset.case("p005").image
    sitk.WriteImage(sitk.Image([10, 12, 4, 2], sitk.sitkInt16), str(path))
    problems = problems_of(tiny_dataset.root)
    assert problems[0] == f"case p005: {path}: image must be 3D, got 4D of shape (2, 4, 12, 10)"


def test_patient_needs_exactly_one_first_scan(tiny_dataset):
    edit_manifest(tiny_dataset.root, lambda m: m["cases"][-1].update(scan_index=0))
    with pytest.raises(ValidationError, match="patient 'p001' has 2 scans with scan_index 0"):
        load_dataset(tiny_dataset.root)


def test_nan_in_a_label(tiny_dataset):
    path = tiny_dataset.case("p003").labels["B"]
    array = np.zeros(TINY_GEOMETRY.shape_zyx, np.float32)
    array[0, 0, 0] = np.nan
    write_image(array, TINY_GEOMETRY, path)
    (problem,) = problems_of(tiny_dataset.root)
    assert problem == f"case p003: {path}: rater B label has NaN/Inf values"


def test_truncated_gzip_is_caught_although_simpleitk_reads_it(tiny_dataset):
    path = tiny_dataset.case("p002").labels["A"]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 20])
    (problem,) = problems_of(tiny_dataset.root)
    assert problem.startswith(f"case p002: {path}: is truncated or damaged")
