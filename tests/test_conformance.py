"""Every registered method (built-in or in `submissions/`) and the submission template run
train -> predict -> evaluate on the smoke profile.

Like timm's test_models.py, the test iterates over the registry: a new submission is tested
without anyone writing a test for it. Per method: fit fold 0 of a synthetic head dataset,
predict its validation cases through the common runner, check the outputs against the images'
own headers and score them; then reload the trained fold through a fresh adapter (as another
process would) and check that it reproduces the probabilities.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.adapter import MethodAdapter
from bench.evaluate import score_study
from bench.io import read_geometry, read_image
from bench.pipeline import fold_cases, run_method
from bench.profiles import get_profile
from bench.registry import methods
from bench.runner import CaseInput, InferenceSettings, output_paths, predict_cases
from bench.submissions import TEMPLATE, import_adapter, validate_manifest

pytestmark = pytest.mark.slow
METHODS = sorted(methods())
TEMPLATE_NAME = "_template"  # runs as a contributor's fresh copy would, before it is renamed


def test_builtin_methods_are_registered_with_descriptions():
    for name in (
        "nnunet3d",
        "nnunet2d",
        "nnunet3d_tuned",
        "nnunet3d_mirrored",
        "nnunet3d_mirrored_tuned",
    ):
        assert name in METHODS and methods().describe(name)
    smp = [name for name in METHODS if name.startswith("smp25d_")]
    assert {"smp25d_unet", "smp25d_unet_mirrored"} <= set(smp) and len(smp) >= 3
    assert methods().entry("monai_segresnet").origin == "submissions/monai_segresnet"


def _adapter_class(name: str) -> type[MethodAdapter]:
    if name == TEMPLATE_NAME:
        return import_adapter(TEMPLATE, validate_manifest(TEMPLATE).entry)
    return methods().get(name)


def _method(name: str) -> str | MethodAdapter:
    """What `run_method` takes: a registered name, or the template's adapter (not registered)."""
    return _adapter_class(name)() if name == TEMPLATE_NAME else name


@pytest.mark.parametrize("name", [*METHODS, TEMPLATE_NAME])
def test_constructor_only_stores_settings(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    adapter = _adapter_class(name)()
    assert isinstance(adapter, MethodAdapter)
    json.dumps({k: repr(v) for k, v in adapter.settings().items()})
    assert not list(tmp_path.iterdir())  # no files, no folders


@pytest.mark.parametrize("name", [*METHODS, TEMPLATE_NAME])
def test_method_runs_end_to_end_on_the_smoke_profile(name, head_dataset, run_root):
    run_root = run_root / "conformance"
    result = run_method(_method(name), head_dataset, "smoke", run_root, folds=[0], progress=False)
    fold = result.folds[0]
    val = [c.id for c in fold_cases(head_dataset, _split(head_dataset), 0).val]
    assert fold.trained_now and fold.train_s > 0
    assert sorted(fold.predicted) == sorted(val) and len(fold.records) == len(val)
    assert result.layout.fold_marker(0).is_file()
    for case_id in val:
        mask_path, probability_path, _ = output_paths(result.layout.predictions_dir, case_id)
        mask, mask_geometry = read_image(mask_path)
        probability, probability_geometry = read_image(probability_path)
        image_geometry = read_geometry(head_dataset.case(case_id).image)
        assert image_geometry.mismatch(mask_geometry) is None
        assert image_geometry.mismatch(probability_geometry) is None
        assert mask.dtype == np.uint8 and probability.dtype == np.float32
        assert set(np.unique(mask)) <= {0, 1}
        assert probability.min() >= 0.0 and probability.max() <= 1.0
        np.testing.assert_array_equal(mask, (probability > 0.5).astype(np.uint8))
    table = score_study(head_dataset, {name: result.layout.predictions_dir}, workers=1, cases=val)
    assert sorted(set(table["case"])) == sorted(val)

    # A rerun finds everything done: nothing is trained or predicted again.
    again = run_method(_method(name), head_dataset, "smoke", run_root, folds=[0], progress=False)
    assert not again.folds[0].trained_now and again.folds[0].predicted == []

    # A fresh adapter reloads the fold from disk and reproduces the probabilities.
    layout = result.layout
    predictor = _adapter_class(name)().load(layout.method_dir, 0, get_profile("smoke"))
    case = head_dataset.case(val[0])
    settings = InferenceSettings.from_profile(get_profile("smoke"), device="cpu")
    out = run_root / "reloaded" / name
    predict_cases(predictor, [CaseInput(case.id, case.image)], out, settings, layout.cache_dir)
    first = read_image(output_paths(layout.predictions_dir, case.id)[1])[0]
    second = read_image(output_paths(out, case.id)[1])[0]
    np.testing.assert_allclose(second, first, atol=1e-5)


def _split(dataset):
    from bench.splits import load_split

    return load_split(dataset)
