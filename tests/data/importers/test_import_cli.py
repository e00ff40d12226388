"""`bench data import ...` through argparse (a local harness: data_cmd wires the real one)."""

from __future__ import annotations

import argparse

import pytest

from bench.cli.data_import_cmd import add_import_parser
from bench.data.dataset import load_dataset
from bench.errors import BenchError

from .layouts import write_folders, write_nnunet


def run_cli(argv: list[str]) -> int:
    """What `bench.cli.main` does: parse, run, turn a BenchError into one line and exit 2."""
    parser = argparse.ArgumentParser(prog="bench")
    data = parser.add_subparsers(dest="command").add_parser("data")
    add_import_parser(data.add_subparsers(dest="data_command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BenchError as error:
        print(f"error: {error}")
        return 2


def test_nnunet_import_prints_the_summary(tmp_path, capsys):
    source = write_nnunet(tmp_path / "src", {"a": 1, "b": 0, "c": 2})
    out = tmp_path / "out"
    code = run_cli(
        ["data", "import", "nnunet", str(source), "--out", str(out), "--quiet", "--folds", "3"]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "median lesion [ml]" in printed and "spacing min [mm]" in printed
    assert "Table 3 (non-inferiority) needs at least two raters" in printed
    assert f"bench run --dataset {out}" in printed
    assert load_dataset(out).raters == ("A",)


def test_folders_options_and_a_bad_input_line(tmp_path, capsys):
    source = write_folders(tmp_path / "src", {"x": {"s1": 1, "s2": 2}, "y": {"s1": 2, "s2": 1}})
    argv = ["data", "import", "folders", str(source), "--out", str(tmp_path / "out"), "--quiet"]
    assert run_cli([*argv, "--raters", "B=y,A=x", "--reference-rater", "A", "--folds", "2"]) == 0
    dataset = load_dataset(tmp_path / "out")
    assert dataset.raters == ("B", "A") and dataset.reference_rater == "A"
    capsys.readouterr()

    assert run_cli([*argv, "--raters", "A=z"]) == 2
    assert "no label folder for rater 'A'" in capsys.readouterr().out


def test_layout_specific_options_are_only_on_their_layout(tmp_path):
    with pytest.raises(SystemExit):
        run_cli(["data", "import", "nnunet", "x", "--out", "y", "--allow-tilt"])


def test_header_options_reach_the_import_and_notices_are_printed(tmp_path, capsys):
    from bench.io import Geometry

    from .layouts import GEOMETRY, box_mask, write_nifti

    source = write_folders(tmp_path / "src", {"x": {"s1": 1, "s2": 2}, "y": {"s1": 2, "s2": 1}})
    x, y, z = GEOMETRY.origin_xyz
    off = Geometry(GEOMETRY.shape_zyx, GEOMETRY.spacing_xyz, (x, y, z + 1.0), GEOMETRY.direction)
    write_nifti(source / "labels" / "y" / "s2.nii.gz", box_mask(1), off)
    argv = ["data", "import", "folders", str(source), "--out", str(tmp_path / "out"), "--quiet"]
    assert run_cli([*argv, "--folds", "2"]) == 2
    assert "--copy-image-header gives it the image's header" in capsys.readouterr().out

    assert (
        run_cli([*argv, "--folds", "2", "--copy-image-header", "--nifti-transform", "qform"]) == 0
    )
    printed = capsys.readouterr().out
    assert "notices:\n- case s2: " in printed and "(--copy-image-header)" in printed
