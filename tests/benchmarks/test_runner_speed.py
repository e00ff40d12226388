"""The common runner against nnU-Net's own `nnUNetPredictor`: same checkpoint, same mirroring.

Six demo-sized synthetic heads (32 x 128 x 128 at 1.875 x 1.875 x 5 mm), an nnunet3d model of
the demo profile (trained for one iteration: speed does not depend on the weights). Both sides
read the image, preprocess it with nnU-Net's preprocessing, run the sliding window with the
same test-time mirroring, map back to the image grid and write the mask and the lesion
probabilities; both with the same torch thread count, back to back in one process, so the
ratio is measured on the same machine under the same load. Target: the runner >= 2x faster.

Run: `pytest -q tests/benchmarks/test_runner_speed.py -o addopts="" -s` (the default options
skip tests/benchmarks). It logs the timings; `-s` shows them.
"""

from __future__ import annotations

import logging
import time

import pytest

from baselines.nnunet.adapters import NnUNet3d
from bench.pipeline import run_method
from bench.profiles import get_profile
from bench.runner import CaseInput, InferenceSettings, predict_cases
from bench.runner.threads import cpu_threads
from tests.baselines.reference_predictor import nnunet_predictor
from tests.baselines.synthetic import write_head_dataset

log = logging.getLogger(__name__)
REQUIRED_SPEEDUP = 2.0
PROFILE = get_profile("demo").with_overrides(
    epochs=1, iterations_per_epoch=1, val_iterations_per_epoch=1
)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("speed")
    dataset = write_head_dataset(
        root / "data",
        n_patients=6,
        second_scans=(),
        shape_zyx=(32, 128, 128),
        spacing_xyz=(1.875, 1.875, 5.0),
    )
    result = run_method("nnunet3d", dataset, PROFILE, root / "work", folds=[0], progress=False)
    return dataset, result, root


@pytest.mark.parametrize("mirror_axes", [(2,), (0, 1, 2)], ids=["left-right", "all-8"])
def test_runner_is_at_least_twice_as_fast_as_nnunet_predictor(model, mirror_axes):
    dataset, result, root = model
    cases = [CaseInput(c.id, c.image) for c in dataset.cases]
    predictor = NnUNet3d().load(result.layout.method_dir, 0, PROFILE)
    settings = InferenceSettings.from_profile(PROFILE, tta_mirror_axes=mirror_axes, device="cpu")
    reference = nnunet_predictor(result, mirror_axes)
    label = "-".join(map(str, mirror_axes))
    (root / f"nnunet-{label}").mkdir()  # nnU-Net writes its arguments there first
    with cpu_threads() as threads:
        started = time.perf_counter()
        predict_cases(predictor, cases, root / f"runner-{label}", settings, root / "cache")
        ours = time.perf_counter() - started
        started = time.perf_counter()
        reference.predict_from_files_sequential(
            [[str(c.image)] for c in cases], str(root / f"nnunet-{label}"), save_probabilities=True
        )
        theirs = time.perf_counter() - started
    message = (
        f"mirror axes {mirror_axes}, {len(cases)} cases, {threads} thread(s): runner {ours:.1f} s "
        f"({ours / len(cases):.2f} s/case), nnUNetPredictor {theirs:.1f} s "
        f"({theirs / len(cases):.2f} s/case), ratio {theirs / ours:.2f}x"
    )
    log.warning(message)
    print(message)
    assert theirs / ours >= REQUIRED_SPEEDUP, message
