"""DICOM import: HU, slice order and geometry from the headers, and each broken series."""

from __future__ import annotations

import locale

import numpy as np
import pytest
import SimpleITK as sitk

from bench.data.importers import import_dataset
from bench.data.importers.common import ImportOptions
from bench.data.importers.dicom_series import read_series
from bench.errors import InputError
from bench.io import Geometry, read_image

from .layouts import box_mask, ct_volume, dicom_geometry, write_dicom_series, write_nifti

CASES = ("c1", "c2", "c3")


def write_dicom_layout(root, raters=("A",), **series):
    """images/<case>/ series and labels/<rater>/<case>.nii.gz masks on the series' grid."""
    for i, case in enumerate(CASES):
        write_dicom_series(root / "images" / case, ct_volume(i), series_uid=f"1.2.3.{i}", **series)
        for side, rater in enumerate(raters, start=1):
            write_nifti(
                root / "labels" / rater / f"{case}.nii.gz", box_mask(side), dicom_geometry()
            )
    return root


def test_import_converts_to_hu_on_the_header_geometry(tmp_path):
    source = write_dicom_layout(tmp_path / "src", raters=("A", "B"))
    result = import_dataset("dicom", source, tmp_path / "out", ImportOptions())

    dataset = result.dataset
    assert dataset.raters == ("A", "B")
    image, geometry = read_image(dataset.case("c2").image)
    assert np.array_equal(image, ct_volume(1))  # HU: stored values + intercept -1024
    assert geometry.mismatch(dicom_geometry()) is None
    assert not dataset.case("c2").image.is_symlink()
    assert dataset.case("c2").labels["B"].is_symlink()  # the NIfTI mask already fits
    assert dataset.case("c2").meta["dicom_slices"] == 5
    assert len(result.summary.raters) == 2


def test_stored_values_differ_from_hu_so_the_intercept_was_applied(tmp_path):
    hu = ct_volume(0)
    files = write_dicom_series(tmp_path / "s", hu)
    stored = np.frombuffer(files[0].read_bytes()[-16 * 16 * 2 :], "<i2").reshape(16, 16)
    assert np.array_equal(stored, hu[0] + 1024)
    assert np.array_equal(sitk.GetArrayFromImage(read_series(tmp_path / "s").image), hu)


def test_slice_order_comes_from_positions_not_file_names(tmp_path):
    hu = ct_volume(3)
    names = [f"{n}.dcm" for n in ("e", "d", "c", "b", "a")]  # reverse of the z order
    write_dicom_series(tmp_path / "s", hu, names=names)
    loaded = read_series(tmp_path / "s")
    assert np.array_equal(sitk.GetArrayFromImage(loaded.image), hu)
    assert [p.name for p in loaded.slice_files] == names


def test_geometry_agrees_with_the_itk_series_reader_on_a_plain_series(tmp_path):
    write_dicom_series(tmp_path / "s", ct_volume(0), pixel_spacing_xy=(0.45, 0.45), step_mm=2.5)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(tmp_path / "s")))
    expected = Geometry.of(reader.Execute())
    assert Geometry.of(read_series(tmp_path / "s").image).mismatch(expected) is None


def itk_series_geometry(folder) -> Geometry:
    """The grid ITK (SimpleITK, ITK-SNAP) gives a series: the peer a mask tool draws on."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    return Geometry.of(reader.Execute())


def test_gantry_tilt_is_reported_not_resampled(tmp_path):
    source = write_dicom_layout(tmp_path / "src", tilt_deg=15.0)
    with pytest.raises(InputError, match=r"case c1: .*images/c1: gantry tilt of 15\.0 degrees"):
        import_dataset("dicom", source, tmp_path / "out", ImportOptions())

    loaded = read_series(source / "images" / "c1", "c1", allow_tilt=True)
    assert loaded.meta["gantry_tilt_deg"] == pytest.approx(15.0, abs=0.01)
    # the table moves 5 mm along z per slice: ITK's spacing is that distance, not the
    # 5 cos(15 deg) = 4.83 mm between the tilted planes along their normal
    assert loaded.image.GetSpacing()[2] == pytest.approx(5.0, abs=1e-4)
    assert Geometry.of(loaded.image).mismatch(itk_series_geometry(source / "images" / "c1")) is None
    assert "voxel volumes are 3.5% larger" in loaded.notices[0]


def test_a_mask_drawn_in_itk_snap_on_a_tilted_series_matches(tmp_path):
    source = write_dicom_layout(tmp_path / "src", tilt_deg=15.0)
    for i, case in enumerate(CASES):
        itk_grid = itk_series_geometry(source / "images" / case)
        write_nifti(source / "labels" / "A" / f"{case}.nii.gz", box_mask(i + 1), itk_grid)
    result = import_dataset("dicom", source, tmp_path / "out", ImportOptions(allow_tilt=True))
    assert result.dataset.case("c2").labels["A"].is_symlink()  # on the image's grid as it is
    assert read_image(result.dataset.case("c2").labels["A"])[0].sum() == 8
    assert result.dataset.case("c2").meta["gantry_tilt_deg"] == pytest.approx(15.0, abs=0.01)
    assert len([n for n in result.summary.notices if "gantry tilt of 15.0" in n]) == 3


def test_missing_slice_names_the_file_after_the_gap(tmp_path):
    write_dicom_series(tmp_path / "s", ct_volume(0), drop=(2,))
    with pytest.raises(InputError, match=r"004\.dcm: missing slice\(s\): a gap of 10\.00 mm"):
        read_series(tmp_path / "s", "c1")


def test_uneven_spacing_is_reported(tmp_path):
    write_dicom_series(tmp_path / "s", ct_volume(0), positions_z=(0, 5, 10, 12, 17))
    with pytest.raises(
        InputError,
        match=r"004\.dcm: uneven slice spacing, not missing slices .* then 2\.00 mm "
        r"from 003\.dcm to 004\.dcm \(1 step\(s\)\)",
    ):
        read_series(tmp_path / "s", "c1")


def test_two_slice_thicknesses_are_uneven_spacing_not_missing_slices(tmp_path):
    # -40 ... -30 at 2.5 mm, then -25 ... -15 at 5 mm, numbered 1 to 8: nothing is missing
    positions = (-40.0, -37.5, -35.0, -32.5, -30.0, -25.0, -20.0, -15.0)
    write_dicom_series(tmp_path / "s", ct_volume(0, (8, 16, 16)), positions_z=positions)
    with pytest.raises(
        InputError,
        match=r"006\.dcm: uneven slice spacing, not missing slices \(instance numbers are "
        r"consecutive\): 2\.50 mm from 001\.dcm to 005\.dcm \(4 step\(s\)\), then 5\.00 mm "
        r"from 005\.dcm to 008\.dcm \(3 step\(s\)\); not resampled: .*dcm2niix",
    ):
        read_series(tmp_path / "s", "c1")


def test_missing_slice_seen_only_in_instance_numbers(tmp_path):
    write_dicom_series(tmp_path / "s", ct_volume(0), instances=(1, 2, 3, 5, 6))
    with pytest.raises(InputError, match="instance numbers jump from 3 to 5"):
        read_series(tmp_path / "s", "c1")


def test_unreadable_dicom_file_is_named(tmp_path):
    source = write_dicom_layout(tmp_path / "src")
    bad = source / "images" / "c2" / "003.dcm"
    bad.write_bytes(bad.read_bytes()[:300])
    with pytest.raises(InputError, match=r"case c2: .*003\.dcm: cannot be read as DICOM"):
        import_dataset("dicom", source, tmp_path / "out", ImportOptions())


def test_two_series_in_one_case_folder(tmp_path):
    write_dicom_series(tmp_path / "s", ct_volume(0), series_uid="1.2.3.1")
    write_dicom_series(
        tmp_path / "s", ct_volume(1), series_uid="1.2.3.2", names=[f"{n}.dcm" for n in "vwxyz"]
    )
    with pytest.raises(InputError, match="holds 2 DICOM series"):
        read_series(tmp_path / "s", "c1")


def test_flipped_mask_is_reoriented_and_another_grid_is_an_error(tmp_path):
    source = write_dicom_layout(tmp_path / "src")
    mask = sitk.GetImageFromArray(box_mask(2))
    dicom_geometry().apply_to(mask)
    flipped = sitk.DICOMOrient(mask, "RAS")  # how dcm2niix-style converters store it
    sitk.WriteImage(flipped, str(source / "labels" / "A" / "c1.nii.gz"))
    result = import_dataset("dicom", source, tmp_path / "out", ImportOptions())
    label, _ = read_image(result.dataset.case("c1").labels["A"])
    assert np.array_equal(label, box_mask(2))

    write_nifti(source / "labels" / "A" / "c3.nii.gz", box_mask(1), dicom_geometry(step_mm=4.0))
    with pytest.raises(InputError, match=r"c3\.nii\.gz: rater A mask is on another grid: spacing"):
        import_dataset("dicom", source, tmp_path / "out2", ImportOptions())


def test_reading_a_series_keeps_the_process_locale(tmp_path):
    write_dicom_series(tmp_path / "series", np.zeros((3, 8, 8), np.int16))
    locale.setlocale(locale.LC_ALL, "C.UTF-8")
    read_series(tmp_path / "series")
    assert locale.getpreferredencoding(False) == "UTF-8"


def test_a_thumbs_db_in_a_series_folder_is_left_out_and_listed(tmp_path):
    source = write_dicom_layout(tmp_path / "src")
    (source / "images" / "c2" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" + bytes(600))
    (source / "images" / "c2" / "report.txt").write_text("CT head without contrast")
    (source / "images" / "DICOMDIR").write_bytes(bytes(300))
    result = import_dataset("dicom", source, tmp_path / "out", ImportOptions())
    assert result.dataset.case("c2").meta["dicom_slices"] == 5
    notices = "\n".join(result.summary.notices)
    assert "case c2: " in notices
    assert "Thumbs.db: not used (not a DICOM file)" in notices
    assert "report.txt: not used (not a DICOM file)" in notices
    assert "images/DICOMDIR: not used (a series is a case folder" in notices


def test_skip_invalid_skips_a_series_without_a_mask(tmp_path):
    source = write_dicom_layout(tmp_path / "src")
    (source / "labels" / "A" / "c2.nii.gz").unlink()
    with pytest.raises(InputError, match="case c2: .*rater A has no mask for this case"):
        import_dataset("dicom", source, tmp_path / "out", ImportOptions())
    result = import_dataset("dicom", source, tmp_path / "out", ImportOptions(skip_invalid=True))
    assert [c.id for c in result.dataset.cases] == ["c1", "c3"]
    assert [s.case for s in result.summary.skipped] == ["c2"]
