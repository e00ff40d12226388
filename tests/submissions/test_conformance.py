"""Every SMP baseline and every submission folder runs train -> predict -> evaluate (smoke).

Like timm's test_models.py, the list comes from the registry and from `submissions/`: a new
submission is tested without anyone writing a test. One fold of a tiny synthetic dataset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import submissions
from bench.evaluate import score_study
from bench.io import read_geometry, read_image
from bench.pipeline import run_method
from bench.registry import discover_submissions, methods
from bench.runner import output_paths
from bench.submissions import TEMPLATE, import_adapter, validate_manifest

SUBMISSIONS_ROOT = Path(submissions.__file__).parent
SMP = sorted(name for name in methods() if name.startswith("smp25d_"))
SUBMITTED = [m.folder.name for m in discover_submissions(SUBMISSIONS_ROOT) if m.kind == "adapter"]


def test_the_smp_baselines_and_the_example_submission_are_registered():
    assert {"smp25d_unet", "smp25d_unet_mirrored"} <= set(SMP) and len(SMP) >= 3
    assert "monai_segresnet" in SUBMITTED and "monai_segresnet" in methods()


def _check_outputs(dataset, result):
    fold = result.folds[0]
    assert fold.trained_now and fold.predicted
    for case_id in fold.predicted:
        mask_path, probability_path, _ = output_paths(result.layout.predictions_dir, case_id)
        mask, geometry = read_image(mask_path)
        assert read_geometry(dataset.case(case_id).image).mismatch(geometry) is None
        assert set(np.unique(mask)) <= {0, 1}
        probability = read_image(probability_path)[0]
        assert probability.min() >= 0.0 and probability.max() <= 1.0
    table = score_study(
        dataset, {"method": result.layout.predictions_dir}, workers=1, cases=fold.predicted
    )
    assert set(table["case"]) == set(fold.predicted)


@pytest.mark.parametrize("name", [*SMP, *(f"submissions/{n}" for n in SUBMITTED), "_template"])
def test_method_trains_predicts_and_scores_on_the_smoke_profile(name, check_dataset, tmp_path):
    if name.startswith("submissions/"):
        manifest = validate_manifest(SUBMISSIONS_ROOT / name.split("/")[1])
        method = manifest.name
    elif name == "_template":
        manifest = validate_manifest(TEMPLATE)
        method = import_adapter(TEMPLATE, manifest.entry)()
    else:
        method = name
    result = run_method(
        method, check_dataset, "smoke", tmp_path, folds=[0], progress=False, device="cpu"
    )
    _check_outputs(check_dataset, result)
