"""`bench show`: one case's NCCT, the raters' contours and the method's map, as a PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.cli import main
from bench.data.dataset import Dataset
from bench.io import read_image, write_image
from bench.predictions import output_paths

CASE = "p003"  # a 2 x 3 x 3 voxel cube lesion in the tiny dataset


@pytest.fixture
def predictions(tiny_dataset: Dataset, tmp_path: Path) -> Path:
    folder = tmp_path / "predictions"
    label, geometry = read_image(tiny_dataset.case(CASE).labels["A"], CASE)
    probability = np.where(label > 0, 0.9, 0.02).astype(np.float32)
    write_image(probability, geometry, output_paths(folder, CASE).probability)
    write_image((probability > 0.5).astype(np.uint8), geometry, output_paths(folder, CASE).mask)
    return folder


def _show(dataset: Dataset, predictions: Path, out: Path, case: str = CASE) -> int:
    argv = ["show", "--dataset", str(dataset.root), "--predictions", str(predictions)]
    return main([*argv, "--case", case, "--out", str(out)])


def test_writes_a_png_with_the_slice_and_the_map(tiny_dataset, predictions, tmp_path):
    out = tmp_path / "fig.png"
    assert _show(tiny_dataset, predictions, out) == 0
    image = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert image.shape == (480, 960, 3)
    not_white = (image < 250).any(axis=2)
    assert not_white.mean() > 0.3  # two image panels and a colour bar, not an empty canvas
    # The probability 0.9 is drawn in the colour map's yellow: red and green high, blue low.
    yellow = (image[..., 0] > 200) & (image[..., 1] > 180) & (image[..., 2] < 150)
    assert yellow.sum() > 100


def test_without_a_probability_map_the_mask_is_drawn(tiny_dataset, predictions, tmp_path):
    output_paths(predictions, CASE).probability.unlink()
    assert _show(tiny_dataset, predictions, tmp_path / "mask.png") == 0
    assert Image.open(tmp_path / "mask.png").size == (960, 480)


def test_a_missing_prediction_is_one_line(tiny_dataset, predictions, tmp_path, capsys):
    assert _show(tiny_dataset, predictions, tmp_path / "x.png", case="p001") == 2
    error = capsys.readouterr().err.strip()
    assert "p001" in error and "no prediction" in error and "\n" not in error
    assert not (tmp_path / "x.png").exists()


def test_a_prediction_on_another_grid_is_one_line(tiny_dataset, predictions, tmp_path, capsys):
    path = output_paths(predictions, CASE).probability
    values, geometry = read_image(path, CASE)
    write_image(
        values[:2], geometry.__class__(**{**geometry.__dict__, "shape_zyx": (2, 12, 10)}), path
    )
    assert _show(tiny_dataset, predictions, tmp_path / "x.png") == 2
    error = capsys.readouterr().err.strip()
    assert CASE in error and "shape" in error and "\n" not in error
