"""Predictions made of links are refused (challenge leak 5): a symlink or a hard link to a
label passed `bench submission check`, and `bench score` gave it Dice 1.000."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.cli import main


def _errors(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]


def _linked_submission(folder: Path, dataset, hard: bool) -> Path:
    from tests.submissions.test_score import write_submission

    write_submission(folder, dataset)
    predictions = folder / "predictions"
    first = sorted(predictions.iterdir())[0]
    label = dataset.case(first.name.removesuffix(".nii.gz")).labels["A"]
    first.unlink()
    if hard:
        os.link(label, first)
    else:
        first.symlink_to(label)
    return folder


@pytest.mark.parametrize("hard", [False, True], ids=["symlink", "hardlink"])
def test_predictions_made_of_links_are_refused_by_check_and_score(
    hard, check_dataset, tmp_path, capsys
):
    folder = _linked_submission(tmp_path / "given_masks", check_dataset, hard)
    assert main(["submission", "check", str(folder)]) == 2
    (error,) = _errors(capsys)
    assert ("hard link" if hard else "symbolic link") in error
    argv = ["score", "--submission", str(folder), "--dataset", str(check_dataset.root)]
    assert main([*argv, "--out", str(tmp_path / "work")]) == 2
    (error,) = _errors(capsys)
    assert ("hard link" if hard else "symbolic link") in error
    assert not list((tmp_path / "work").rglob("*.json"))
