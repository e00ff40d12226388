"""AISD import: PNG slices onto the DICOM grid, lesion values, and the dataset's known defects."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from bench.data.importers import import_dataset
from bench.data.importers.common import ImportOptions
from bench.data.importers.summary import format_summary
from bench.errors import InputError
from bench.io import read_image

from .layouts import VOXEL_ML, ct_volume, write_dicom_series, write_png

# The CT grid of write_dicom_series' defaults: 0.8 x 0.6 mm pixels, 5 mm slices.
AISD_VOXEL_ML = 0.8 * 0.6 * 5.0 / 1000.0


def graded_slice() -> np.ndarray:
    """Value v on v pixels of row v, for v = 1..5: lesion {1, 2, 3, 5} is 11 pixels."""
    png = np.zeros((16, 16), np.uint8)
    for value in range(1, 6):
        png[value, :value] = value
    return png


def write_case(root, case, n_pngs=5, release="dicom-0", first_png=None, **series):
    """dicom-<n>/<case>/CT/ files 8.dcm..12.dcm, 8.dcm at the top (names unpadded)."""
    names = [f"{n}.dcm" for n in (12, 11, 10, 9, 8)]  # z order: 12.dcm lowest
    write_dicom_series(
        root / release / case / "CT",
        ct_volume(int(case)),
        names=names,
        instances=(12, 11, 10, 9, 8),
        series_uid=f"1.2.3.{case}",
        **series,
    )
    for k in range(n_pngs):
        png = first_png if (k == 0 and first_png is not None) else np.zeros((16, 16))
        write_png(root / "mask" / case / f"{k:03d}.png", png)


@pytest.fixture
def aisd(tmp_path):
    root = tmp_path / "aisd"
    write_case(root, "0001", first_png=graded_slice())
    write_case(root, "0002", n_pngs=6)  # like AISD 0226134: masks and DICOM disagree
    write_case(root, "0003", drop=(2,))  # broken in dicom-0 ...
    write_case(root, "0003", release="dicom-3", first_png=graded_slice())  # ... fixed in dicom-3
    write_png(root / "mask" / "0004" / "000.png", np.zeros((16, 16)))  # masks, no DICOM
    return root


def test_import_maps_pngs_by_file_name_and_keeps_lesion_values(aisd, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        result = import_dataset("aisd", aisd, tmp_path / "out", ImportOptions(n_folds=2))

    dataset = result.dataset
    assert [c.id for c in dataset.cases] == ["0001", "0003"]
    mask, geometry = read_image(dataset.case("0001").labels["A"])
    # 000.png belongs to 8.dcm (first by natural name order), which lies at the top: z = 4
    assert mask[4].sum() == 11 and mask[:4].sum() == 0
    assert mask[4, 4, :4].tolist() == [0, 0, 0, 0]  # value 4: invisible on CT, not lesion
    assert result.summary.volumes_ml["A"][0] == pytest.approx(11 * AISD_VOXEL_ML)
    image, _ = read_image(dataset.case("0001").image)
    assert np.array_equal(image, ct_volume(1))
    assert dataset.case("0003").meta["aisd_release"] == "dicom-3"

    skipped = {s.case: s.reason for s in result.summary.skipped}
    assert skipped["0002"] == "6 mask slices but 5 DICOM slices"
    assert "no DICOM series" in skipped["0004"]
    assert "skipped case 0002: 6 mask slices but 5 DICOM slices" in caplog.text
    text = format_summary(result.summary)
    assert "0002" in text and "Table 3 (non-inferiority) needs at least two raters" in text
    manifest = json.loads((dataset.root / "dataset.json").read_text(encoding="utf-8"))
    assert manifest["import"]["lesion_values"] == [1, 2, 3, 5]
    assert [s["case"] for s in manifest["import"]["skipped"]] == ["0002", "0004"]
    assert "AISD" in manifest["source"]


def test_lesion_values_are_configurable(aisd, tmp_path):
    options = ImportOptions(lesion_values=(2,), n_folds=2)
    result = import_dataset("aisd", aisd, tmp_path / "out", options)
    assert result.summary.volumes_ml["A"][0] == pytest.approx(2 * AISD_VOXEL_ML)
    assert AISD_VOXEL_ML != VOXEL_ML  # the AISD grid is its own, read from the headers


def test_value_outside_zero_to_five_names_the_png(aisd, tmp_path):
    bad = graded_slice()
    bad[10, 10] = 7
    write_png(aisd / "mask" / "0001" / "003.png", bad)
    with pytest.raises(InputError, match=r"case 0001: .*003\.png: mask value\(s\) \[7\] outside"):
        import_dataset("aisd", aisd, tmp_path / "out", ImportOptions(n_folds=2))


def test_nothing_left_is_an_error(tmp_path):
    root = tmp_path / "aisd"
    write_case(root, "0002", n_pngs=4)
    with pytest.raises(InputError, match=r"no case left to import \(1 skipped\)"):
        import_dataset("aisd", root, tmp_path / "out", ImportOptions())
    assert not (tmp_path / "out").exists()


# --- issue 20: real data in, nothing lost ------------------------------------------------------


def test_an_empty_ct_folder_names_its_case(aisd, tmp_path):
    (aisd / "dicom-1" / "0005" / "CT").mkdir(parents=True)
    write_png(aisd / "mask" / "0005" / "000.png", np.zeros((16, 16)))
    with pytest.raises(InputError, match=r"case 0005: .*0005/CT: the CT folder is empty"):
        import_dataset("aisd", aisd, tmp_path / "out", ImportOptions(n_folds=2))
    options = ImportOptions(n_folds=2, skip_invalid=True)
    result = import_dataset("aisd", aisd, tmp_path / "out", options)
    skipped = {s.case: s.reason for s in result.summary.skipped}
    assert skipped["0005"].startswith("the CT folder is empty")
    assert [c.id for c in result.dataset.cases] == ["0001", "0003"]


def test_upper_case_png_masks_are_found(aisd, tmp_path):
    for png in (aisd / "mask" / "0001").iterdir():
        png.rename(png.with_name(png.stem + ".PNG"))
    (aisd / "mask" / "0001" / "._000.PNG").write_bytes(bytes(100))  # unpacked on a Mac
    result = import_dataset("aisd", aisd, tmp_path / "out", ImportOptions(n_folds=2))
    mask, _ = read_image(result.dataset.case("0001").labels["A"])
    assert mask[4].sum() == 11
