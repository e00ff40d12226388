"""nnU-Net training interrupted after a checkpoint and resumed ends with the uninterrupted
run's weights and predictions, bit for bit (CPU, in-process augmentation, one process).

A checkpoint holds the weights and the optimiser, not the random generators: before each
epoch drew from its own seed (`baselines.nnunet.trainers.seed_epoch`), the resumed epochs drew
other batches and patches than the uninterrupted run, and the model and its predictions
differed (found by the kill-9 loop, `test_kill9.py`).
"""

from __future__ import annotations

import pytest
import torch

from baselines.nnunet.trainers import BenchTrainer
from bench.pipeline import run_method
from bench.profiles import get_profile
from tests.baselines.interrupt import interrupt_after_epoch
from tests.baselines.synthetic import write_head_dataset

PROFILE = get_profile("smoke").with_overrides(epochs=3, iterations_per_epoch=2)


@pytest.mark.slow
def test_training_resumed_from_a_checkpoint_ends_with_the_uninterrupted_weights(
    tmp_path, monkeypatch
):
    dataset = write_head_dataset(tmp_path / "heads")
    whole = run_method("nnunet3d", dataset, PROFILE, tmp_path / "whole", [0], progress=False)

    original_end = BenchTrainer.on_epoch_end
    interrupt_after_epoch(monkeypatch, epoch=2)
    with pytest.raises(KeyboardInterrupt):
        run_method("nnunet3d", dataset, PROFILE, tmp_path / "resumed", [0], progress=False)
    monkeypatch.setattr(BenchTrainer, "on_epoch_end", original_end)
    resumed = run_method("nnunet3d", dataset, PROFILE, tmp_path / "resumed", [0], progress=False)

    def final_weights(root):
        (path,) = root.glob("models/nnunet3d/smoke/nnunet/results/*/*/fold_0/checkpoint_final.pth")
        return torch.load(path, map_location="cpu", weights_only=False)["network_weights"]

    first, second = final_weights(tmp_path / "whole"), final_weights(tmp_path / "resumed")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[name], second[name]) for name in first)
    cases = [r["case"] for r in whole.folds[0].records]
    assert cases == [r["case"] for r in resumed.folds[0].records] and cases
    for case in cases:
        for folder in ("", "probabilities/"):
            name = f"predictions/nnunet3d/smoke/{folder}{case}.nii.gz"
            assert (tmp_path / "whole" / name).read_bytes() == (
                tmp_path / "resumed" / name
            ).read_bytes()


def test_the_thread_probe_leaves_the_global_generator_alone():
    """The advisory thread probe runs before a process's first training; had it drawn from
    the global generator, a model built after it would start from other weights than one
    built in a process where the probe had already run."""
    from bench.runner.threads import _probe_seconds

    torch.manual_seed(7)
    expected = torch.rand(4)
    torch.manual_seed(7)
    _probe_seconds(1, repeats=1)
    assert torch.equal(torch.rand(4), expected)
