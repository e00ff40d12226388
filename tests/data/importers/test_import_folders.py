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


# --- issue 20: real data in, nothing lost ------------------------------------------------------


def test_upper_case_extension_is_a_case_in_every_folder(tmp_path):
    source = write_folders(tmp_path / "src", SIDES)
    for folder in ("images", "labels/expert_a", "labels/expert_b", "labels/expert_c"):
        path = source / folder / "s4.nii.gz"
        path.rename(path.with_name("s4.NII.GZ"))
    (source / "labels" / "expert_a" / "readme.md").write_text("rater A's notes")
    (source / "images" / "old").mkdir()
    result = import_dataset("folders", source, tmp_path / "out", ImportOptions())
    assert [c.id for c in result.dataset.cases] == ["s1", "s2", "s3", "s4"]
    assert validate_dataset(result.dataset) == []
    notices = "\n".join(result.summary.notices)
    assert "expert_a/readme.md: not used (not NIfTI, .mha or .nrrd)" in notices
    assert "images/old: not used (a folder; images are files in images/)" in notices


def test_skip_invalid_skips_a_case_a_rater_did_not_label(tmp_path):
    source = write_folders(tmp_path / "src", SIDES)
    (source / "labels" / "expert_c" / "s3.nii.gz").unlink()
    result = import_dataset("folders", source, tmp_path / "out", ImportOptions(skip_invalid=True))
    assert [c.id for c in result.dataset.cases] == ["s1", "s2", "s4"]
    assert [(s.case, s.reason) for s in result.summary.skipped] == [
        ("s3", "rater expert_c has no mask for this case")
    ]


def shifted(dx_mm: float):
    x, y, z = GEOMETRY.origin_xyz
    return GEOMETRY.__class__(
        GEOMETRY.shape_zyx, GEOMETRY.spacing_xyz, (x + dx_mm, y, z), GEOMETRY.direction
    )


def test_a_mask_within_the_grid_tolerance_gets_the_image_header(tmp_path):
    from bench.io import read_image

    source = write_folders(tmp_path / "src", SIDES)
    write_nifti(source / "labels" / "expert_b" / "s2.nii.gz", box_mask(2), shifted(0.0004))
    result = import_dataset("folders", source, tmp_path / "out", ImportOptions())
    label = result.dataset.case("s2").labels["expert_b"]
    assert not label.is_symlink()
    mask, geometry = read_image(label)
    assert geometry == read_image(result.dataset.case("s2").image)[1] and mask.sum() == 8
    [notice] = result.summary.notices
    assert "origin (-5.99960, -6.00000, 10.00000) differs from the image's" in notice
    assert "(-6.00000, -6.00000, 10.00000) by (0.0004, 0, 0)" in notice


def test_a_mask_beyond_the_tolerance_shows_the_difference_and_the_way_out(tmp_path):
    source = write_folders(tmp_path / "src", SIDES)
    # 0.04 mm is 0.05 of a 0.8 mm voxel: beyond the 0.01 voxel tolerance
    write_nifti(source / "labels" / "expert_b" / "s2.nii.gz", box_mask(2), shifted(0.04))
    with pytest.raises(
        InputError,
        match=r"s2\.nii\.gz: rater expert_b mask is on another grid: origin \(-5\.960, "
        r"-6\.000, 10\.000\) differs from the image's \(-6\.000, -6\.000, 10\.000\) by "
        r"\(0\.04, 0, 0\) \(voxel centres up to 0\.05 voxel apart; tolerance 0\.01\); if it "
        r"was drawn on this image's voxels, --copy-image-header",
    ):
        import_dataset("folders", source, tmp_path / "out", ImportOptions())
    result = import_dataset(
        "folders", source, tmp_path / "out", ImportOptions(copy_image_header=True)
    )
    assert validate_dataset(result.dataset) == []
    [notice] = result.summary.notices
    assert "case s2: " in notice and "given the image's header (--copy-image-header)" in notice


def test_a_rater_folder_with_a_space_names_the_option_that_renames_it(tmp_path):
    source = write_folders(tmp_path / "src", SIDES)
    (source / "labels" / "expert_b").rename(source / "labels" / "expert b")
    # the order the import would take (' ' sorts first), so the reference rater stays the same
    with pytest.raises(InputError, match=r"--raters 'expert_b=expert b,expert_a,expert_c'"):
        import_dataset("folders", source, tmp_path / "out", ImportOptions())
    options = ImportOptions(raters=("expert_b=expert b", "expert_a", "expert_c"))
    dataset = import_dataset("folders", source, tmp_path / "out", options).dataset
    assert dataset.raters == ("expert_b", "expert_a", "expert_c")
