"""ISLES'24 import: both folder spellings, the follow-up-infarct provenance, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.data.importers import import_dataset
from bench.data.importers.common import ImportOptions
from bench.data.importers.summary import format_summary
from bench.errors import InputError
from bench.io import Geometry

from .layouts import VOXEL_ML, box_mask, ct_volume, write_nifti, write_nifti_codes

SUBJECTS = {"sub-stroke0001": 2, "sub-stroke0002": 0, "sub-stroke0003": 3}


def write_isles(root, raw="raw_data", acute="ses-01", follow_up="ses-02", pipeline=""):
    for i, (subject, side) in enumerate(SUBJECTS.items()):
        ncct = root / raw / subject / acute / f"{subject}_{acute}_ncct.nii.gz"
        write_nifti(ncct, ct_volume(i))
        derivatives = root / "derivatives" / pipeline if pipeline else root / "derivatives"
        mask = (
            derivatives
            / subject
            / follow_up
            / f"{subject}_{follow_up}_space-ncct_lesion-msk.nii.gz"
        )
        write_nifti(mask, box_mask(side).astype(np.float32))  # stored as float 0.0 / 1.0
        write_nifti(mask.with_name(f"{subject}_{follow_up}_space-ncct_dwi.nii.gz"), ct_volume(9))
    return root


@pytest.mark.parametrize(
    ("raw", "acute", "follow_up", "pipeline"),
    [("raw_data", "ses-01", "ses-02", ""), ("rawdata", "ses-0001", "ses-0002", "lesion_masks")],
)
def test_both_spellings_import_with_the_follow_up_note(tmp_path, raw, acute, follow_up, pipeline):
    source = write_isles(tmp_path / "isles24", raw, acute, follow_up, pipeline)
    result = import_dataset("isles24", source, tmp_path / "out", ImportOptions(n_folds=3))

    dataset = result.dataset
    assert [c.id for c in dataset.cases] == sorted(SUBJECTS)
    assert dataset.raters == ("A",)
    assert dataset.case("sub-stroke0003").labels["A"].is_symlink()  # float 0/1 is binary
    manifest = json.loads((dataset.root / "dataset.json").read_text(encoding="utf-8"))
    assert "follow-up infarct" in manifest["source"]
    assert "not acute hypodensity" in manifest["note"]
    assert manifest["license"] == "CC BY-NC-SA 4.0"
    assert result.summary.empty_count("A") == 1
    assert "Note: ISLES'24 labels are the follow-up infarct" in format_summary(result.summary)


def test_missing_mask_and_duplicate_ncct(tmp_path):
    source = write_isles(tmp_path / "isles24")
    mask = next((source / "derivatives" / "sub-stroke0002").rglob("*lesion-msk.nii.gz"))
    mask.unlink()
    with pytest.raises(InputError, match="case sub-stroke0002: .*no follow-up lesion mask"):
        import_dataset("isles24", source, tmp_path / "out", ImportOptions())

    source = write_isles(tmp_path / "again")
    acute = source / "raw_data" / "sub-stroke0001" / "ses-01"
    write_nifti(acute / "sub-stroke0001_ses-01_run-2_ncct.nii.gz", ct_volume(5))
    with pytest.raises(InputError, match="sub-stroke0001: .*duplicate case: 2 NCCT files"):
        import_dataset("isles24", source, tmp_path / "out", ImportOptions())


def test_not_an_isles_folder(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(InputError, match="no raw_data or rawdata folder"):
        import_dataset("isles24", tmp_path / "x", tmp_path / "out", ImportOptions())


# --- issue 20: real data in, nothing lost ------------------------------------------------------

# The grids of ISLES'24's two published example masks: uint16 in LAS with qform code 2 and
# sform code 1, and float64 in LPS; each NCCT shares its mask's grid.
LAS = Geometry((5, 16, 16), (0.8, 0.8, 5.0), (6.0, 6.0, 10.0), (1, 0, 0, 0, -1, 0, 0, 0, 1))
LPS = Geometry((5, 16, 16), (0.8, 0.8, 5.0), (-6.0, -6.0, 10.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))


def write_isles_published(root, sides=(2, 3)):
    """Two subjects whose masks carry the headers of the published example masks."""
    for subject, side, geometry, dtype, codes in (
        ("sub-stroke0001", sides[0], LAS, np.uint16, (2, 1)),
        ("sub-stroke0002", sides[1], LPS, np.float64, (1, 1)),
    ):
        ncct = root / "raw_data" / subject / "ses-01" / f"{subject}_ses-01_ncct.nii.gz"
        write_nifti_codes(ncct, ct_volume(side), geometry, codes=(1, 1))
        mask = (
            root
            / "derivatives"
            / subject
            / "ses-02"
            / f"{subject}_ses-02_space-ncct_lesion-msk.nii.gz"
        )
        write_nifti_codes(mask, box_mask(side).astype(dtype), geometry, codes=codes)
    return root


def test_the_published_example_mask_headers_import(tmp_path):
    source = write_isles_published(tmp_path / "isles24")
    result = import_dataset("isles24", source, tmp_path / "out", ImportOptions(n_folds=2))
    assert sorted(result.summary.volumes_ml["A"]) == pytest.approx(
        [8 * VOXEL_ML, 18 * VOXEL_ML]  # 2 x 2 x 2 and 2 x 3 x 3 voxels
    )
    assert not result.summary.notices


def test_an_appledouble_file_next_to_a_mask_is_not_a_second_mask(tmp_path):
    source = write_isles_published(tmp_path / "isles24")
    mask = next((source / "derivatives" / "sub-stroke0001").rglob("*lesion-msk.nii.gz"))
    (mask.parent / f"._{mask.name}").write_bytes(b"\x00\x05\x16\x07" + bytes(200))
    archive = source / "__MACOSX" / "derivatives" / "sub-stroke0002" / "ses-02"
    archive.mkdir(parents=True)
    (archive / "._sub-stroke0002_ses-02_space-ncct_lesion-msk.nii.gz").write_bytes(bytes(80))
    (source / "raw_data" / "stroke0003").mkdir()  # not BIDS-named: listed, not guessed
    result = import_dataset("isles24", source, tmp_path / "out", ImportOptions(n_folds=2))
    assert [c.id for c in result.dataset.cases] == ["sub-stroke0001", "sub-stroke0002"]
    [notice] = result.summary.notices
    assert notice.endswith("raw_data/stroke0003: not used (not a sub-<label> subject folder)")


def test_skip_invalid_skips_a_subject_without_a_mask(tmp_path):
    source = write_isles(tmp_path / "isles24")
    next((source / "derivatives" / "sub-stroke0002").rglob("*lesion-msk.nii.gz")).unlink()
    options = ImportOptions(skip_invalid=True, n_folds=2)
    result = import_dataset("isles24", source, tmp_path / "out", options)
    assert [c.id for c in result.dataset.cases] == ["sub-stroke0001", "sub-stroke0003"]
    [skipped] = result.summary.skipped
    assert skipped.case == "sub-stroke0002" and "no follow-up lesion mask" in skipped.reason
