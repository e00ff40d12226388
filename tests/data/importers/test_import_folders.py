"""Multi-rater folders import: rater names, renaming, laterality CSV, skips and bad input."""

from __future__ import annotations

import logging

import pytest

from bench.data.importers import import_dataset
from bench.data.importers.common import ImportOptions
from bench.data.importers.summary import format_summary
from bench.data.validate import validate_dataset
from bench.errors import InputError

from .layouts import GEOMETRY, VOXEL_ML, box_mask, write_csv, write_folders, write_nifti

SIDES = {
    "expert_a": {"s1": 2, "s2": 1, "s3": 0, "s4": 3},
    "expert_b": {"s1": 3, "s2": 2, "s3": 1, "s4": 3},
    "expert_c": {"s1": 1, "s2": 1, "s3": 0, "s4": 2},
}


def test_rater_names_come_from_the_folders(tmp_path):
    source = write_folders(tmp_path / "src", SIDES)
    result = import_dataset("folders", source, tmp_path / "out", ImportOptions())
    dataset = result.dataset
    assert dataset.raters == ("expert_a", "expert_b", "expert_c")
    assert dataset.reference_rater == "expert_a"
    assert validate_dataset(dataset) == []
    assert (dataset.root / "labels" / "expert_b" / "s2.nii.gz").is_symlink()
    medians = {r: sorted(v)[1:3] for r, v in result.summary.volumes_ml.items()}
    # expert_b sides 1, 2, 3, 3 -> middle two volumes 2*2*2 and 2*3*3 voxels
    assert medians["expert_b"] == pytest.approx([8 * VOXEL_ML, 18 * VOXEL_ML])
    assert "Table 3" not in format_summary(result.summary)


def test_raters_renamed_and_chosen_on_the_command_line(tmp_path):
    source = write_folders(tmp_path / "src", SIDES)
    options = ImportOptions(raters=("A=expert_b", "B=expert_a"), reference_rater="A")
    dataset = import_dataset("folders", source, tmp_path / "out", options).dataset
    assert dataset.raters == ("A", "B") and dataset.reference_rater == "A"
    assert dataset.case("s1").labels["A"].resolve().parent.name == "expert_b"


def test_csv_sets_patients_scan_index_and_laterality(tmp_path):
    source = write_folders(tmp_path / "src", SIDES)
    csv = write_csv(
        tmp_path / "meta.csv",
        [("s1", "p1", 0, "L"), ("s2", "p1", 1, "left"), ("s3", "p2", 0, ""), ("s4", "p3", 0, "R")],
        ("case", "patient", "scan_index", "laterality"),
    )
    dataset = import_dataset("folders", source, tmp_path / "out", ImportOptions(csv=csv)).dataset
    assert dataset.case("s1").laterality == "left"
    assert dataset.case("s3").laterality is None
    assert dataset.case("s4").laterality == "right"
    assert dataset.case("s2").patient == "p1" and dataset.case("s2").scan_index == 1


def test_single_label_folder_is_one_rater_and_nnunet_style_names_match(tmp_path):
    source = write_folders(tmp_path / "src", {"x": {"s1": 1, "s2": 2}}, image_suffix="_0000")
    for path in (source / "labels" / "x").iterdir():
        path.rename(source / "labels" / path.name)
    (source / "labels" / "x").rmdir()
    result = import_dataset("folders", source, tmp_path / "out", ImportOptions(rater="A"))
    assert result.dataset.raters == ("A",)
    assert "Table 3 (non-inferiority) needs at least two raters" in format_summary(result.summary)


def test_missing_mask_names_the_expected_file(tmp_path):
    source = write_folders(tmp_path / "src", SIDES)
    (source / "labels" / "expert_c" / "s3.nii.gz").unlink()
    with pytest.raises(InputError, match=r"expert_c/s3\.nii\.gz: rater expert_c has no mask"):
        import_dataset("folders", source, tmp_path / "out", ImportOptions())


def test_skip_invalid_lists_a_bad_case_and_imports_the_rest(tmp_path, caplog):
    source = write_folders(tmp_path / "src", SIDES)
    other = GEOMETRY.__class__(
        (4, 16, 16), GEOMETRY.spacing_xyz, GEOMETRY.origin_xyz, GEOMETRY.direction
    )
    write_nifti(source / "labels" / "expert_b" / "s2.nii.gz", box_mask(1, (4, 16, 16)), other)
    with pytest.raises(InputError, match="s2.nii.gz: rater expert_b mask is on another grid"):
        import_dataset("folders", source, tmp_path / "out", ImportOptions())
    with caplog.at_level(logging.WARNING):
        result = import_dataset(
            "folders", source, tmp_path / "out", ImportOptions(skip_invalid=True)
        )
    assert [c.id for c in result.dataset.cases] == ["s1", "s3", "s4"]
    assert [s.case for s in result.summary.skipped] == ["s2"]
    assert "skipped case s2" in caplog.text
    assert "another grid" in format_summary(result.summary)
    assert not list((result.dataset.root / "images").glob("s2*"))


def test_unreadable_image_names_the_file(tmp_path):
    source = write_folders(tmp_path / "src", SIDES)
    (source / "images" / "s4.nii.gz").write_bytes(b"not an image" * 20)
    with pytest.raises(InputError, match=r"case s4: .*s4\.nii\.gz: cannot be read as an image"):
        import_dataset("folders", source, tmp_path / "out", ImportOptions())


def test_mha_and_nrrd_files_are_converted_to_nifti(tmp_path):
    import SimpleITK as sitk

    from bench.io import read_image

    from .layouts import ct_volume

    source = write_folders(tmp_path / "src", {"A": {"s1": 2, "s2": 1}})
    (source / "images" / "s1.nii.gz").unlink()
    image = GEOMETRY.apply_to(sitk.GetImageFromArray(ct_volume(7)))
    sitk.WriteImage(image, str(source / "images" / "s1.mha"))
    (source / "labels" / "A" / "s1.nii.gz").unlink()
    label = GEOMETRY.apply_to(sitk.GetImageFromArray(box_mask(2)))
    sitk.WriteImage(label, str(source / "labels" / "A" / "s1.nrrd"))

    dataset = import_dataset("folders", source, tmp_path / "out", ImportOptions(n_folds=2)).dataset
    case = dataset.case("s1")
    assert case.image.name == "s1.nii.gz" and not case.image.is_symlink()
    assert (read_image(case.image)[0] == ct_volume(7)).all()
    assert read_image(case.labels["A"])[0].sum() == 8


def test_validator_problems_name_the_output_files(tmp_path):
    import numpy as np

    from bench.errors import ValidationError

    from .layouts import ct_volume

    source = write_folders(tmp_path / "src", SIDES)
    image = ct_volume(0).astype(np.float32)
    image[0, 0, 0] = np.nan
    write_nifti(source / "images" / "s2.nii.gz", image)
    with pytest.raises(
        ValidationError, match=r"case s2: .*/out/images/s2\.nii\.gz: image has 1 NaN"
    ):
        import_dataset("folders", source, tmp_path / "out", ImportOptions())
    assert not (tmp_path / "out").exists()
