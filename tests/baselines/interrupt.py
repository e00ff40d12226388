"""A training run interrupted as a kill would: right after an epoch's checkpoint is saved."""

from __future__ import annotations

import pytest

from baselines.nnunet.trainers import BenchTrainer


def interrupt_after_epoch(monkeypatch: pytest.MonkeyPatch, epoch: int = 2) -> None:
    """Make nnU-Net training raise KeyboardInterrupt once `epoch` has ended (and its
    checkpoint_latest.pth is written: the smoke profile saves every epoch)."""
    original_end = BenchTrainer.on_epoch_end

    def interrupted(self):
        original_end(self)
        if self.current_epoch == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(BenchTrainer, "on_epoch_end", interrupted)
