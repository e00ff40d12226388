"""nnU-Net normalises the mirrored channel with the image's statistics.

Its own CT normalisation takes a channel's statistics from the voxels under the labels; under a
lesion the mirror holds the healthy twin, or bone where a cortical lesion's twin lands on the
skull, so on the demo phantom the mirror reached the network 4x flatter than the image.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from baselines.nnunet.adapters import NnUNet3dMirrored
from baselines.nnunet.planning import normalised_like_the_image
from baselines.nnunet.workspace import PLANS
from bench.pipeline import fold_cases
from bench.splits import load_split


def test_only_a_mirror_of_the_image_shares_its_statistics():
    assert normalised_like_the_image(("image", "mirrored")) == {"1": "0"}
    assert normalised_like_the_image(("mirrored", "image")) == {"0": "1"}
    assert normalised_like_the_image(("image",)) == {}


@pytest.mark.slow
def test_the_mirrored_channel_is_planned_with_the_images_intensity_statistics(
    head_dataset, tmp_path
):
    workdir = tmp_path / "models"
    cases = fold_cases(head_dataset, load_split(head_dataset), 0, tmp_path / "cache")
    workspace = NnUNet3dMirrored().prepare(cases, Path(workdir), "smoke")
    plans = json.loads((workspace.preprocessed_dataset / f"{PLANS}.json").read_text("utf-8"))
    statistics = plans["foreground_intensity_properties_per_channel"]
    assert statistics["1"] == statistics["0"]
    fingerprint = json.loads(
        (workspace.preprocessed_dataset / "dataset_fingerprint.json").read_text("utf-8")
    )
    own = fingerprint["foreground_intensity_properties_per_channel"]
    assert own["1"] != own["0"]  # what nnU-Net would have used
