"""A 2.5D training run killed right after a checkpoint resumes to the very same weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.smp import train
from baselines.smp.config import Smp25dConfig, TrainPlan, resolve
from bench.profiles import get_profile


def _plan(**changes) -> TrainPlan:
    # The smoke plan (ResNet-18, 32 x 32 crops, batch 4), 6 iterations, a checkpoint every 2.
    smoke = resolve(Smp25dConfig("Unet", "resnet34", slices=3), get_profile("smoke"))
    return TrainPlan.from_dict(
        {**smoke.to_dict(), "iterations": 6, "checkpoint_every": 2, **changes}
    )


def _volumes() -> list[train.Volume]:
    rng = np.random.default_rng(0)
    volumes = []
    for _ in range(2):
        data = rng.uniform(-1, 1, (1, 6, 40, 40)).astype(np.float16)
        label = np.zeros((6, 40, 40), np.uint8)
        label[2:4, 10:20, 12:22] = 1
        volumes.append(train.Volume(data, label, np.argwhere(label > 0)))
    return volumes


def _weights(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in network.state_dict().items()}


@pytest.fixture
def one_thread():
    """The same kernels in both runs (and the session's thread count restored after)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(
    tmp_path, monkeypatch, one_thread
):
    plan, volumes = _plan(), _volumes()
    (tmp_path / "whole").mkdir()
    whole = _weights(train.train_fold(volumes, plan, tmp_path / "whole", "cpu", False))

    original_save = train._save
    saved: list[int] = []

    def killed_after_the_second_checkpoint(path, network, optimizer, iteration, generators=None):
        original_save(path, network, optimizer, iteration, generators)
        saved.append(iteration)
        if path.name == train.LATEST and iteration == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(train, "_save", killed_after_the_second_checkpoint)
    (tmp_path / "resumed").mkdir()
    with pytest.raises(KeyboardInterrupt):
        train.train_fold(volumes, plan, tmp_path / "resumed", "cpu", False)
    assert saved == [2, 4] and (tmp_path / "resumed" / train.LATEST).is_file()
    resumed = _weights(train.train_fold(volumes, plan, tmp_path / "resumed", "cpu", False))
    assert saved == [2, 4, 6]  # resumed at 4: only the final model was written after
    assert not (tmp_path / "resumed" / train.LATEST).exists()
    assert whole.keys() == resumed.keys()
    for key in whole:
        torch.testing.assert_close(resumed[key], whole[key], rtol=0, atol=0, msg=key)


def test_no_intermediate_checkpoint_when_the_interval_covers_the_run(tmp_path, monkeypatch):
    written: list[tuple[str, int]] = []
    monkeypatch.setattr(
        train, "_save", lambda path, net, opt, it, gens=None: written.append((path.name, it))
    )
    (tmp_path / "fold").mkdir()
    train.train_fold(_volumes(), _plan(iterations=3, checkpoint_every=3), tmp_path, "cpu", False)
    assert written == [(train.FINAL, 3)]
