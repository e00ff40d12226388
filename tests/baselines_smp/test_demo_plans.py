"""The demo profile as the 2.5D baselines and the monai_segresnet example read it (issue #7).

(The example submission's plan is tested here too: it shares the 2.5D methods' demo budget
reasoning, and tests/submissions only runs it end to end on the smoke profile.)
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from baselines.smp.adapters import (
    Smp25dFpnEffB0,
    Smp25dUnet,
    Smp25dUnetMirrored,
    Smp25dUnetPlusPlusR18,
)
from baselines.smp.config import DEMO_STEP_SECONDS, DEMO_TRAIN_SECONDS, resolve
from bench.io import Geometry, write_image
from bench.profiles import get_profile
from bench.registry import submissions_root

ADAPTERS = (Smp25dUnet, Smp25dUnetMirrored, Smp25dFpnEffB0, Smp25dUnetPlusPlusR18)


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda a: a.__name__)
def test_demo_keeps_the_named_encoder_and_fits_the_time_budget(adapter):
    demo = get_profile("demo")
    plan = resolve(adapter.config, demo)
    assert (plan.arch, plan.encoder) == (adapter.config.arch, adapter.config.encoder)
    assert plan.encoder.replace("-", "").lower() in adapter.description.replace("-", "").lower()
    seconds = plan.iterations * DEMO_STEP_SECONDS[plan.arch]
    assert 0.8 * DEMO_TRAIN_SECONDS <= seconds <= DEMO_TRAIN_SECONDS
    # one checkpoint, half way: resumable, and a small share of the training time
    assert plan.checkpoint_every == plan.iterations // 2
    assert (plan.patch_size, plan.batch_size) == (demo.patch_size_2d, demo.batch_size_2d)


def test_the_documented_demo_plan_of_the_resnet34_unet():
    plan = resolve(Smp25dUnet.config, get_profile("demo"))
    assert (plan.iterations, plan.checkpoint_every, plan.cpu_bfloat16) == (800, 400, True)
    assert resolve(Smp25dFpnEffB0.config, get_profile("demo")).cpu_bfloat16 is False


@pytest.mark.parametrize("name", ["smoke", "paper"])
def test_other_profiles_are_read_literally(name):
    profile = get_profile(name)
    plan = resolve(Smp25dUnet.config, profile)
    assert plan.iterations == profile.epochs * profile.iterations_per_epoch
    assert plan.checkpoint_every == profile.checkpoint_every * profile.iterations_per_epoch
    assert plan.cpu_bfloat16 is False


def _monai_adapter():
    path = submissions_root() / "monai_segresnet" / "adapter.py"
    spec = importlib.util.spec_from_file_location("monai_segresnet_adapter", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_monai_segresnet_resamples_to_the_profile_spacing_and_back(tmp_path):
    module = _monai_adapter()
    plan = module.SegResNetMethod()._plan(get_profile("demo"))
    assert plan["spacing"] == (5.0, 3.75, 3.75)
    assert module.SegResNetMethod()._plan(get_profile("paper"))["spacing"] is None
    geometry = Geometry(
        (6, 16, 12), (1.875, 1.875, 5.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1)
    )
    image = np.full((6, 16, 12), 40, np.int16)
    image[:, :8] = 0
    write_image(image, geometry, tmp_path / "ct.nii.gz")
    data, shape = module.preprocess([tmp_path / "ct.nii.gz"], plan["spacing"])
    assert data.shape == (1, 6, 8, 6) and shape == (6, 16, 12)
    np.testing.assert_allclose(data[0, :, 6:], 0.0)  # 40 HU: the window's centre
    back = module.resample(np.stack([1 - data[0], data[0]]), shape)
    assert back.shape == (2, 6, 16, 12)
    native, _ = module.preprocess([tmp_path / "ct.nii.gz"], None)
    assert native.shape == (1, 6, 16, 12)
