"""The CLI of the foundation: --version, list, data validate, data split; errors as one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench import __version__
from bench.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"bench {__version__}"


@pytest.mark.parametrize("argv", [["list"], ["--help"], ["data", "--help"]])
def test_help_and_list_import_no_heavy_library(argv):
    heavy = ("torch", "nnunetv2", "monai", "segmentation_models_pytorch", "scipy", "nilearn")
    code = (
        "import sys\nfrom bench.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        f"loaded = [m for m in {heavy!r} if m in sys.modules]\nassert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_validate_clean_dataset(tiny_dataset, capsys):
    assert main(["data", "validate", str(tiny_dataset.root), "--quiet"]) == 0
    assert (
        "tiny: 7 cases, 6 patients, raters A, B, C (reference A): valid" in capsys.readouterr().out
    )


def test_validate_bad_dataset_gives_one_line_per_problem_and_exit_2(tiny_dataset, capsys):
    tiny_dataset.case("p003").image.unlink()
    tiny_dataset.case("p004").labels["C"].write_bytes(b"garbage")
    assert main(["data", "validate", str(tiny_dataset.root), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert err[0].startswith("error: case p003: ") and err[0].endswith("file is missing")
    assert err[1].startswith("error: case p004: ") and "cannot be read as an image" in err[1]
    assert not any("Traceback" in line for line in err)


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(Exception, match="dataset.json is missing"):
        main(["--debug", "data", "validate", str(tmp_path)])


def test_not_a_dataset(tmp_path, capsys):
    assert main(["data", "validate", str(tmp_path)]) == 2
    assert (
        capsys.readouterr().err
        == f"error: {tmp_path}/dataset.json: not a dataset: dataset.json is missing\n"
    )


def test_split_writes_a_frozen_split(tiny_dataset, capsys):
    assert main(["data", "split", str(tiny_dataset.root)]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "splits.json" in out
    split = json.loads((tiny_dataset.root / "splits.json").read_text(encoding="utf-8"))
    assert split["n_folds"] == 5
    assert main(["data", "split", str(tiny_dataset.root)]) == 0  # same split again: fine
    capsys.readouterr()
    assert main(["data", "split", str(tiny_dataset.root), "--seed", "3"]) == 2
    assert "a different split already exists" in capsys.readouterr().err
    assert main(["data", "split", str(tiny_dataset.root), "--seed", "3", "--force"]) == 0
