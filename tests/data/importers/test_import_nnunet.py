"""nnU-Net raw import: links, patients from a CSV, label classes, and each bad input."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from bench.data.dataset import load_dataset
from bench.data.importers import import_dataset
from bench.data.importers.common import ImportOptions
from bench.data.validate import validate_dataset
from bench.errors import InputError
from bench.io import read_image
from bench.splits import load_split

from .layouts import GEOMETRY, VOXEL_ML, box_mask, write_csv, write_nifti, write_nnunet

SIDES = {"c1": 2, "c2": 0, "c3": 3, "c4": 1, "c5": 2}


def test_import_links_pixels_validates_and_splits(tmp_path):
    source = write_nnunet(tmp_path / "Dataset501_Tiny", SIDES)
    result = import_dataset("nnunet", source, tmp_path / "out", ImportOptions())

    dataset = load_dataset(tmp_path / "out")
    assert validate_dataset(dataset) == []
    assert dataset.raters == ("A",) and dataset.reference_rater == "A"
    assert [c.id for c in dataset.cases] == sorted(SIDES)
    image = tmp_path / "out" / "images" / "c1.nii.gz"
    assert image.is_symlink()
    assert os.readlink(image) == str((source / "imagesTr" / "c1_0000.nii.gz").resolve())
    assert (tmp_path / "out" / "labels" / "A" / "c3.nii.gz").is_symlink()
    assert load_split(dataset)["n_folds"] == 5
    assert dataset.case("c1").meta["source"] == "imagesTr/c1_0000.nii.gz"

    # one patient per case; volumes: 2 * side^2 voxels of 0.8 * 0.8 * 5 mm^3
    summary = result.summary
    assert summary.n_patients == 5
    expected = sorted(2 * s * s * VOXEL_ML for s in SIDES.values())
    assert sorted(summary.volumes_ml["A"]) == pytest.approx(expected)
    assert summary.empty_count("A") == 1
    manifest = json.loads((tmp_path / "out" / "dataset.json").read_text(encoding="utf-8"))
    assert manifest["license"] == "CC-BY-4.0"
    assert manifest["import"]["layout"] == "nnunet"
    assert "Dataset501_Tiny" in manifest["source"]


def test_copy_writes_real_files(tmp_path):
    source = write_nnunet(tmp_path / "src", SIDES)
    import_dataset("nnunet", source, tmp_path / "out", ImportOptions(copy=True))
    image = tmp_path / "out" / "images" / "c1.nii.gz"
    assert image.is_file() and not image.is_symlink()
    assert image.read_bytes() == (source / "imagesTr" / "c1_0000.nii.gz").read_bytes()


def test_patients_and_rater_name_from_options(tmp_path):
    source = write_nnunet(tmp_path / "src", SIDES)
    csv = write_csv(
        tmp_path / "cases.csv",
        [("c1", "p1", 0), ("c2", "p1", 1), ("c3", "p2", 0), ("c4", "p3", 0), ("c5", "p4", 0)],
        ("case", "patient", "scan_index"),
    )
    options = ImportOptions(csv=csv, rater="expert1", n_folds=3)
    result = import_dataset("nnunet", source, tmp_path / "out", options)
    dataset = result.dataset
    assert dataset.raters == ("expert1",)
    assert dataset.case("c2").patient == "p1" and dataset.case("c2").scan_index == 1
    assert result.summary.n_patients == 4
    split = load_split(dataset)
    assert all("c2" not in fold["val"] for fold in split["folds"])


def test_multi_class_labels_are_merged_into_a_binary_mask(tmp_path):
    labels = {"background": 0, "core": 1, "penumbra": 2}
    source = write_nnunet(tmp_path / "src", {"c1": 2, "c2": 1})
    two_classes = box_mask(2)
    two_classes[1, 4, 5] = 2  # one voxel of class 2 inside the 2 x 2 x 2 box
    write_nifti(source / "labelsTr" / "c1.nii.gz", two_classes)
    (source / "dataset.json").write_text(
        json.dumps({"labels": labels, "channel_names": {"0": "CT"}})
    )

    result = import_dataset("nnunet", source, tmp_path / "out", ImportOptions())
    label = tmp_path / "out" / "labels" / "A" / "c1.nii.gz"
    assert not label.is_symlink()  # converted: the stored file is not binary
    mask, _ = read_image(label)
    assert set(np.unique(mask)) == {0, 1} and mask.sum() == 8
    assert result.summary.volumes_ml["A"][0] == pytest.approx(8 * VOXEL_ML)

    only_core = ImportOptions(lesion_values=(1,), force=True)
    result = import_dataset("nnunet", source, tmp_path / "out", only_core)
    assert result.summary.volumes_ml["A"][0] == pytest.approx(7 * VOXEL_ML)


def test_label_value_outside_the_expected_set_names_the_file(tmp_path):
    source = write_nnunet(tmp_path / "src", SIDES)
    write_nifti(source / "labelsTr" / "c4.nii.gz", box_mask(1, value=255))
    with pytest.raises(InputError, match=r"c4\.nii\.gz: label value\(s\) \[255\] outside"):
        import_dataset("nnunet", source, tmp_path / "out", ImportOptions())
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_mask_on_another_grid_names_the_file(tmp_path):
    source = write_nnunet(tmp_path / "src", SIDES)
    moved = GEOMETRY.__class__(
        GEOMETRY.shape_zyx, (0.8, 0.8, 4.0), GEOMETRY.origin_xyz, GEOMETRY.direction
    )
    write_nifti(source / "labelsTr" / "c2.nii.gz", box_mask(1), moved)
    with pytest.raises(
        InputError, match=r"case c2: .*c2\.nii\.gz: rater A mask is on another grid"
    ):
        import_dataset("nnunet", source, tmp_path / "out", ImportOptions())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: (s / "labelsTr" / "c3.nii.gz").unlink(), "image has no label"),
        (
            lambda s: write_nifti(s / "labelsTr" / "c9.nii.gz", box_mask(1)),
            "label has no image",
        ),
        (
            lambda s: write_nifti(s / "imagesTr" / "c1_0000.nii", box_mask(1)),
            "duplicate case id",
        ),
        (lambda s: (s / "dataset.json").unlink(), "dataset.json is missing"),
    ],
)
def test_missing_extra_and_duplicate_cases(tmp_path, change, message):
    source = write_nnunet(tmp_path / "src", SIDES)
    change(source)
    with pytest.raises(InputError, match=message):
        import_dataset("nnunet", source, tmp_path / "out", ImportOptions())


def test_patient_with_two_first_scans_in_the_csv_is_an_error(tmp_path):
    source = write_nnunet(tmp_path / "src", SIDES)
    csv = write_csv(
        tmp_path / "cases.csv",
        [("c1", "p1", 0), ("c2", "p1", 0), ("c3", "p2", 0), ("c4", "p3", 0), ("c5", "p4", 0)],
        ("case", "patient", "scan_index"),
    )
    with pytest.raises(InputError, match="patient 'p1' has 2 scans with scan_index 0"):
        import_dataset("nnunet", source, tmp_path / "out", ImportOptions(csv=csv))
