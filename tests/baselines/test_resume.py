"""nnU-Net training killed mid-way continues from its last checkpoint, not from scratch."""

from __future__ import annotations

import json

import pytest

from baselines.nnunet.trainers import BenchTrainer
from bench.pipeline import run_method
from bench.profiles import get_profile
from tests.baselines.interrupt import interrupt_after_epoch

pytestmark = pytest.mark.slow
PROFILE = get_profile("smoke").with_overrides(epochs=3, iterations_per_epoch=2)


def test_training_killed_after_an_epoch_resumes_from_the_checkpoint(
    head_dataset, tmp_path, monkeypatch
):
    original_end, original_step = BenchTrainer.on_epoch_end, BenchTrainer.train_step

    interrupt_after_epoch(monkeypatch, epoch=2)
    with pytest.raises(KeyboardInterrupt):
        run_method("nnunet3d", head_dataset, PROFILE, tmp_path, folds=[0], progress=False)
    fold_dir = next((tmp_path / "models" / "nnunet3d" / "smoke").glob("nnunet/results/*/*/fold_0"))
    assert (fold_dir / "checkpoint_latest.pth").is_file()
    assert not (fold_dir / "checkpoint_final.pth").exists()
    assert not (tmp_path / "models" / "nnunet3d" / "smoke" / "fold_0.done.json").exists()
    assert not list(fold_dir.glob(".*tmp*"))  # checkpoints are written atomically

    steps = []
    monkeypatch.setattr(BenchTrainer, "on_epoch_end", original_end)
    monkeypatch.setattr(
        BenchTrainer,
        "train_step",
        lambda self, batch: steps.append(1) or original_step(self, batch),
    )
    result = run_method("nnunet3d", head_dataset, PROFILE, tmp_path, folds=[0], progress=False)
    assert len(steps) == 1 * PROFILE.iterations_per_epoch  # only the third epoch was left
    assert result.folds[0].trained_now and result.folds[0].predicted
    assert (fold_dir / "checkpoint_final.pth").is_file()
    marker = json.loads(
        (tmp_path / "models/nnunet3d/smoke/fold_0.done.json").read_text(encoding="utf-8")
    )
    assert marker["predictor"]["epochs_trained"] == PROFILE.epochs
