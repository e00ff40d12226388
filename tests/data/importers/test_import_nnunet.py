"""nnU-Net raw import: links, patients from a CSV, label classes, and each bad input."""

from __future__ import annotations

import json
import math
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

from .layouts import GEOMETRY, VOXEL_ML, box_mask, ct_volume, write_csv, write_nifti, write_nnunet

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
    assert load_split(dataset).n_folds == 5
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
    assert all("c2" not in fold.val for fold in split.folds)


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


# --- issue 20: real data in, nothing lost ------------------------------------------------------


def write_named(path, array):
    """A NIfTI under any name (ITK writes lower-case suffixes only)."""
    write_nifti(path.with_name("tmp.nii.gz"), array).rename(path)


def test_upper_case_extensions_are_cases_not_dropped(tmp_path):
    source = write_nnunet(tmp_path / "src", SIDES)
    write_named(source / "imagesTr" / "c6_0000.NII.GZ", box_mask(0))
    write_named(source / "labelsTr" / "c6.NII.GZ", box_mask(2))
    write_named(source / "labelsTr" / "c5.Nii.Gz", box_mask(2))  # a mixed-case label alone
    (source / "labelsTr" / "c5.nii.gz").unlink()
    (source / "imagesTr" / "notes.txt").write_text("converted by hand")
    result = import_dataset("nnunet", source, tmp_path / "out", ImportOptions())
    assert [c.id for c in result.dataset.cases] == ["c1", "c2", "c3", "c4", "c5", "c6"]
    assert result.dataset.case("c6").image.name == "c6.nii.gz"  # the link's name is canonical
    assert read_image(result.dataset.case("c6").labels["A"])[0].sum() == 8
    notices = "\n".join(result.summary.notices)
    assert "notes.txt: not used (not NIfTI, .mha or .nrrd)" in notices
    assert "numTraining is 5 but 6 case(s) were found" in notices


def test_skip_invalid_skips_a_case_without_a_label_and_lists_it(tmp_path):
    source = write_nnunet(tmp_path / "src", SIDES)
    (source / "labelsTr" / "c3.nii.gz").unlink()
    with pytest.raises(InputError, match=r"case c3: .*image has no label in labelsTr"):
        import_dataset("nnunet", source, tmp_path / "out", ImportOptions())
    result = import_dataset("nnunet", source, tmp_path / "out", ImportOptions(skip_invalid=True))
    assert [c.id for c in result.dataset.cases] == ["c1", "c2", "c4", "c5"]
    [skipped] = result.summary.skipped
    assert skipped.case == "c3" and "expected c3.nii.gz" in skipped.reason


def test_disagreeing_qform_and_sform_stop_unless_one_is_trusted(tmp_path):
    from .layouts import write_nifti_codes

    source = write_nnunet(tmp_path / "src", SIDES)
    moved = GEOMETRY.__class__(
        GEOMETRY.shape_zyx, GEOMETRY.spacing_xyz, (-6.0, -6.0, 30.0), GEOMETRY.direction
    )
    image = source / "imagesTr" / "c1_0000.nii.gz"
    write_nifti_codes(image, read_image(image)[0], GEOMETRY, moved, codes=(1, 2))
    with pytest.raises(
        InputError,
        match=r"c1_0000\.nii\.gz: qform \(code 1\) and sform \(code 2\) disagree: qform origin "
        r"\(-6\.0, -6\.0, 10\.0\) mm, sform origin \(-6\.0, -6\.0, 30\.0\) mm .*20 mm apart.*"
        r"SimpleITK reads the qform, nibabel the sform: say which to trust",
    ):
        import_dataset("nnunet", source, tmp_path / "out", ImportOptions())

    # the label was drawn where SimpleITK puts the image: trusting the qform matches it
    result = import_dataset(
        "nnunet", source, tmp_path / "out", ImportOptions(nifti_transform="qform")
    )
    written = result.dataset.case("c1").image
    assert not written.is_symlink()
    import nibabel

    assert nibabel.load(str(written)).affine[:3, 3] == pytest.approx([6.0, 6.0, 10.0])
    assert "written with the qform" in "\n".join(result.summary.notices)
    with pytest.raises(InputError, match=r"c1\.nii\.gz: rater A mask is on another grid: origin"):
        import_dataset("nnunet", source, tmp_path / "o2", ImportOptions(nifti_transform="sform"))


def test_following_the_label_value_hint_keeps_every_lesion(tmp_path, caplog):
    source = write_nnunet(tmp_path / "src", {**SIDES, "c6": 0})
    write_nifti(source / "labelsTr" / "c6.nii.gz", box_mask(2, value=255))
    with pytest.raises(InputError, match=r"c6\.nii\.gz: .*--lesion-values 1,255 counts them"):
        import_dataset("nnunet", source, tmp_path / "out", ImportOptions())
    kept = import_dataset("nnunet", source, tmp_path / "out", ImportOptions(lesion_values=(1, 255)))
    assert kept.summary.empty_count("A") == 1 and not kept.summary.notices  # c2 is empty

    import logging

    with caplog.at_level(logging.WARNING):
        only_255 = import_dataset(
            "nnunet", source, tmp_path / "o2", ImportOptions(lesion_values=(255,))
        )
    emptied = [n for n in only_255.summary.notices if "imported as an EMPTY mask" in n]
    assert len(emptied) == 4  # c1, c3, c4, c5 hold value 1 only
    assert (
        "case c1: " in emptied[0] and "value(s) [1] but the lesion values are [255]" in emptied[0]
    )
    assert caplog.text.count("imported as an EMPTY mask") == 4

    as_background = ImportOptions(label_values=(0, 255))
    result = import_dataset("nnunet", source, tmp_path / "o3", as_background)
    assert [n.split(":")[0] for n in result.summary.notices if "EMPTY" in n] == ["case c6"]


def test_placeholder_licence_is_recorded_as_unknown(tmp_path):
    source = write_nnunet(tmp_path / "src", SIDES)
    spec = json.loads((source / "dataset.json").read_text())
    spec["licence"] = "Whoever converted this dataset was lazy and didn't look it up!"
    (source / "dataset.json").write_text(json.dumps(spec))
    result = import_dataset("nnunet", source, tmp_path / "out", ImportOptions())
    assert result.dataset.manifest["license"] == "unknown"
    assert "nnU-Net's placeholder" in "\n".join(result.summary.notices)
    given = import_dataset("nnunet", source, tmp_path / "o2", ImportOptions(license="CC-BY-4.0"))
    assert given.dataset.manifest["license"] == "CC-BY-4.0" and not given.summary.notices


def test_an_imported_nii_dataset_feeds_nnunet_readable_files(tmp_path):
    import nibabel

    from baselines.nnunet.workspace import Workspace, write_raw_dataset
    from bench.adapter import LabelledCase

    source = write_nnunet(tmp_path / "src", {"c1": 2, "c2": 1})
    for path in [*source.glob("*Tr/*.nii.gz")]:
        write_nifti(path.with_name(path.name.replace(".nii.gz", ".nii")), read_image(path)[0])
        path.unlink()
    dataset = import_dataset("nnunet", source, tmp_path / "out", ImportOptions(n_folds=2)).dataset
    assert dataset.case("c1").image.name == "c1.nii"  # linked as it is
    cases = [LabelledCase(c.id, c.patient, c.image, c.labels["A"]) for c in dataset.cases]
    workspace = Workspace(tmp_path / "nnunet")
    write_raw_dataset(workspace, cases, ["image"], tmp_path / "cache")
    for name, expected in (
        ("imagesTr/c1_0000.nii.gz", ct_volume(0)),
        ("labelsTr/c1.nii.gz", box_mask(2)),
    ):
        array = np.asarray(nibabel.load(str(workspace.raw_dataset / name)).dataobj)
        assert np.array_equal(np.transpose(array, (2, 1, 0)), expected)
    write_raw_dataset(workspace, cases, ["image"], tmp_path / "cache")  # a rerun reuses the copies
    assert len(list((tmp_path / "cache" / "nii_gz").iterdir())) == 4


def test_a_qform_and_sform_that_differ_only_in_their_axes_are_caught_too(tmp_path):
    from .layouts import write_nifti_codes

    source = write_nnunet(tmp_path / "src", SIDES)
    t = math.radians(5)  # 5 degrees about z: corners of a 16-voxel row move ~1.4 voxels
    turned = GEOMETRY.__class__(
        GEOMETRY.shape_zyx,
        GEOMETRY.spacing_xyz,
        GEOMETRY.origin_xyz,
        (math.cos(t), -math.sin(t), 0.0, math.sin(t), math.cos(t), 0.0, 0.0, 0.0, 1.0),
    )
    label = source / "labelsTr" / "c2.nii.gz"
    write_nifti_codes(label, read_image(label)[0], GEOMETRY, turned, codes=(1, 2))
    with pytest.raises(
        InputError,
        match=r"c2\.nii\.gz: qform \(code 1\) and sform \(code 2\) disagree: qform origin "
        r"\(-6\.00, -6\.00, 10\.00\) mm, sform origin \(-6\.00, -6\.00, 10\.00\) \(the axes "
        r"differ\) mm",
    ):
        import_dataset("nnunet", source, tmp_path / "out", ImportOptions())
