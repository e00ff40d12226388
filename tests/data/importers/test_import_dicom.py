"""DICOM import: HU, slice order and geometry from the headers, and each broken series."""

from __future__ import annotations

import locale
import math

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


def test_gantry_tilt_is_reported_not_resampled(tmp_path):
    source = write_dicom_layout(tmp_path / "src", tilt_deg=15.0)
    with pytest.raises(InputError, match=r"case c1: .*images/c1: gantry tilt of 15\.0 degrees"):
        import_dataset("dicom", source, tmp_path / "out", ImportOptions())

    loaded = read_series(source / "images" / "c1", "c1", allow_tilt=True)
    assert loaded.meta["gantry_tilt_deg"] == pytest.approx(15.0, abs=0.01)
    # the planes are 5 mm apart along z, i.e. 5 cos(15 deg) apart along their normal
    assert loaded.image.GetSpacing()[2] == pytest.approx(5.0 * math.cos(math.radians(15)), 1e-4)


def test_missing_slice_names_the_file_after_the_gap(tmp_path):
    write_dicom_series(tmp_path / "s", ct_volume(0), drop=(2,))
    with pytest.raises(InputError, match=r"004\.dcm: missing slice\(s\): a gap of 10\.00 mm"):
        read_series(tmp_path / "s", "c1")


def test_uneven_spacing_is_reported(tmp_path):
    write_dicom_series(tmp_path / "s", ct_volume(0), positions_z=(0, 5, 10, 12, 17))
    with pytest.raises(InputError, match="uneven slice spacing: 2.00 mm after 003.dcm"):
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
