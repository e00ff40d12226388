"""Shared pieces: the case CSV, label values, the output folder's safety, orphaned scans."""

from __future__ import annotations

import numpy as np
import pytest

from bench.data.importers import import_dataset
from bench.data.importers.common import (
    ImportOptions,
    LabelValues,
    parse_int_list,
    read_case_table,
)
from bench.data.importers.place import binarize
from bench.errors import InputError

from .layouts import box_mask, write_csv, write_folders, write_nifti

SIDES = {"r1": {"s1": 1, "s2": 2, "s3": 0}, "r2": {"s1": 2, "s2": 2, "s3": 1}}


def test_case_table_columns_and_defaults(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("Case;Patient;scan_index;Laterality\na;p1;0;R\nb;p1;1;bilateral\nc;;;\n")
    table = read_case_table(path)
    assert table["a"].patient == "p1" and table["a"].laterality == "right"
    assert table["b"].scan_index == 1 and table["b"].laterality == "bilateral"
    assert table["c"].patient == "c" and table["c"].scan_index == 0
    assert table["c"].laterality is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("patient\np1\n", "needs a 'case' column"),
        ("case,scan_index\na,-1\n", "scan_index '-1' is not an integer >= 0"),
        ("case,patient\na,p\na,q\n", "line 3: duplicate case id"),
        ("case,laterality\na,up\n", "laterality 'up' is not one of"),
    ],
)
def test_case_table_errors_name_the_line(tmp_path, text, message):
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_case_table(path)


def test_parse_int_list():
    assert parse_int_list("1-3,5") == (1, 2, 3, 5)
    with pytest.raises(InputError, match="not a list of integers"):
        parse_int_list("1,x")


def test_binarize_keeps_lesion_values_and_rejects_others():
    values = LabelValues.of(ImportOptions(), default_lesion=(1, 2), default_allowed=range(5))
    raw = np.array([[0, 1, 2, 3, 4]])
    mask, unchanged = binarize(raw, values, "c", "f")
    assert mask.tolist() == [[0, 1, 1, 0, 0]] and not unchanged
    _, unchanged = binarize(np.array([0, 1]), values, "c", "f")
    assert unchanged
    with pytest.raises(InputError, match=r"label value\(s\) \[9\] outside the expected set"):
        binarize(np.array([0, 9]), values, "c", "f")
    with pytest.raises(InputError, match="non-integer values"):
        binarize(np.array([0.0, 0.5]), values, "c", "f")


def test_out_folder_is_never_clobbered(tmp_path):
    source = write_folders(tmp_path / "src", SIDES)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        import_dataset("folders", source, tmp_path / "busy", ImportOptions())
    with pytest.raises(InputError, match="must not be the source folder"):
        import_dataset("folders", source, source, ImportOptions())

    import_dataset("folders", source, tmp_path / "out", ImportOptions())
    with pytest.raises(InputError, match="already holds a dataset"):
        import_dataset("folders", source, tmp_path / "out", ImportOptions())
    replaced = import_dataset("folders", source, tmp_path / "out", ImportOptions(force=True))
    assert replaced.dataset.raters == ("r1", "r2")
    assert (source / "images" / "s1.nii.gz").is_file()  # replacing never touches the source
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers


def test_later_scans_of_a_skipped_first_scan_are_skipped_too(tmp_path):
    source = write_folders(tmp_path / "src", SIDES)
    write_nifti(source / "labels" / "r2" / "s1.nii.gz", box_mask(1, value=3))
    csv = write_csv(
        tmp_path / "c.csv",
        [("s1", "p1", 0), ("s2", "p1", 1), ("s3", "p2", 0)],
        ("case", "patient", "scan_index"),
    )
    options = ImportOptions(csv=csv, skip_invalid=True, n_folds=2)
    result = import_dataset("folders", source, tmp_path / "out", options)
    assert [c.id for c in result.dataset.cases] == ["s3"]
    reasons = {s.case: s.reason for s in result.summary.skipped}
    assert "outside the expected set" in reasons["s1"]
    assert reasons["s2"] == "patient p1 has no imported first scan (scan_index 0)"


def test_rater_names_must_be_plain_folder_names(tmp_path):
    source = write_folders(tmp_path / "src", SIDES)
    options = ImportOptions(raters=("a b=r1", "B=r2"))
    with pytest.raises(InputError, match="rater name 'a b' must be letters"):
        import_dataset("folders", source, tmp_path / "out", options)


@pytest.mark.parametrize(
    ("umask", "folder_mode", "file_mode"), [(0o022, 0o755, 0o644), (0o027, 0o750, 0o640)]
)
def test_the_imported_dataset_follows_the_umask(tmp_path, umask, folder_mode, file_mode):
    import os
    import stat

    source = write_folders(tmp_path / "src", SIDES)
    write_nifti(source / "labels" / "r2" / "s1.nii.gz", box_mask(1, value=3))  # converted file
    saved = os.umask(umask)
    try:
        options = ImportOptions(lesion_values=(1, 3), n_folds=2)
        root = import_dataset("folders", source, tmp_path / "out", options).dataset.root
    finally:
        os.umask(saved)
    converted = root / "labels" / "r2" / "s1.nii.gz"
    assert not converted.is_symlink()
    for path in (root, root / "labels", root / "labels" / "r2"):
        assert stat.S_IMODE(path.stat().st_mode) == folder_mode, path
    for path in (root / "dataset.json", root / "splits.json", converted):
        assert stat.S_IMODE(path.stat().st_mode) == file_mode, path
