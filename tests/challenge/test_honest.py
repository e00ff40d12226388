"""An honest submission through the CLI: same masks as the common runner, scored as usual."""

from __future__ import annotations

import numpy as np
import pytest

from bench.io import read_image
from bench.profiles import get_profile
from bench.results import load_results
from bench.runner import CaseInput, InferenceSettings, predict_cases
from bench.submissions import import_adapter
from tests.challenge.conftest import HONEST

pytestmark = pytest.mark.slow  # the session's honest run starts a child that imports torch


def test_every_case_is_predicted_and_recorded(honest_run, challenge_dataset, isolation):
    record = honest_run.record
    assert sorted(c["case"] for c in record["cases"]) == sorted(
        c.id for c in challenge_dataset.cases
    )
    assert {c["status"] for c in record["cases"]} == {"ok"}
    assert all(c["latency_s"] > 0 for c in record["cases"])
    assert record["isolation"]["level"] == isolation.level
    assert not any(
        name.startswith(("BENCH", "nnUNet")) for name in record["isolation"]["environment"]
    )
    written = sorted(p.name for p in honest_run.out.iterdir())
    expected = sorted(
        [f"{c.id}.nii.gz" for c in challenge_dataset.cases] + ["challenge_record.json"]
    )
    assert written == expected  # no probabilities, no runner records: masks only


def test_masks_are_those_of_the_common_runner_in_process(honest_run, challenge_dataset, tmp_path):
    profile = get_profile("smoke")
    predictor = import_adapter(HONEST, "adapter:Method")().load(honest_run.model, 0, profile)
    settings = InferenceSettings.from_profile(profile, device="cpu", threads=1)
    inputs = [CaseInput(c.id, c.image) for c in challenge_dataset.cases]
    predict_cases(predictor, inputs, tmp_path / "direct", settings, tmp_path / "cache")
    for case in challenge_dataset.cases:
        ours, geometry = read_image(honest_run.out / f"{case.id}.nii.gz")
        theirs, their_geometry = read_image(tmp_path / "direct" / f"{case.id}.nii.gz")
        assert geometry == their_geometry
        np.testing.assert_array_equal(ours, theirs)


def test_scores_match_a_hand_computed_dice(honest_run, challenge_dataset):
    results = load_results(honest_run.results)
    assert results.method.name == "challenge_honest" and results.profile == "challenge-smoke"
    table = results.per_case.to_frame()
    mine = table[(table["test"] == "challenge_honest") & (table["reference"] == "A")]
    assert sorted(mine["case"]) == sorted(c.id for c in challenge_dataset.cases)
    for case in challenge_dataset.cases:
        label = read_image(case.labels["A"])[0] > 0
        mask = read_image(honest_run.out / f"{case.id}.nii.gz")[0] > 0
        # An independent Dice: the threshold on the image, against rater A's label.
        assert np.array_equal(mask, read_image(case.image)[0] < 30.0)
        if label.any():
            dice = 2 * (label & mask).sum() / (label.sum() + mask.sum())
            row = mine[mine["case"] == case.id].iloc[0]
            assert abs(float(row["Dice"]) - dice) < 1e-6
