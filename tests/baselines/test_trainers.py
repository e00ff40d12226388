"""The bench trainer's own rules, on stand-ins (no training): strict split, early stopping."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from baselines.nnunet.trainers import BenchTrainer
from baselines.nnunet.workspace import Workspace, write_splits_final
from bench.adapter import FoldIds
from bench.errors import BenchError


def test_a_fold_missing_from_splits_final_is_an_error_not_a_random_split(tmp_path):
    workspace = Workspace(tmp_path)
    write_splits_final(workspace, [FoldIds(0, ("a",), ("a2",), ("b",))])
    trainer = SimpleNamespace(
        preprocessed_dataset_folder_base=str(workspace.preprocessed_dataset), fold=1
    )
    with pytest.raises(BenchError, match="no fold 1.*refusing"):
        BenchTrainer.do_split(trainer)
    trainer.fold = 0
    assert BenchTrainer.do_split(trainer) == (["a"], ["b"])
    write_splits_final(workspace, [FoldIds(0, ("a",), ("a2",), ("b",))], with_additional=True)
    assert BenchTrainer.do_split(trainer) == (["a", "a2"], ["b"])
    with pytest.raises(BenchError, match="numbered 0..n-1"):
        write_splits_final(workspace, [FoldIds(1, (), (), ())])


@pytest.mark.parametrize(
    ("ema", "stop"),
    [
        ([0.0] * 6, False),  # never found a lesion yet: keep training
        ([0.0024, 0.0, 0.0, 0.0, 0.0, 0.0], False),  # first-epoch speckle is not a best (demo)
        ([0.1, 0.5, 0.4, 0.3, 0.2, 0.1], True),  # best at epoch 1, then 4 epochs worse
        ([0.1, 0.5, 0.4], False),  # still in the first half of the budget
        ([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], False),  # still improving
        ([float("nan")] * 6, False),  # no validation foreground at all
    ],
)
def test_early_stopping(ema, stop):
    trainer = SimpleNamespace(
        early_stopping_patience=3,
        num_epochs=6,
        logger=SimpleNamespace(get_value=lambda key, step: ema),
    )
    assert BenchTrainer.should_stop(trainer) is stop


def test_tuned_configure_sets_the_tuned_weight_decay_and_early_stopping():
    from baselines.nnunet.trainers import TUNED, TunedTrainer
    from bench.profiles import get_profile

    class Probe(TunedTrainer):
        def __init__(self):  # only configure() is under test: skip nnU-Net's constructor
            self.weight_decay = 3e-5  # nnU-Net's default

    trainer = Probe()
    profile = get_profile("smoke")
    trainer.configure(profile)
    assert trainer.weight_decay == TUNED.weight_decay != 3e-5
    assert trainer.early_stopping_patience == profile.early_stopping_patience


def test_the_tuned_trainer_chooses_no_checkpoint_on_the_folds_validation_cases():
    """nnU-Net's best checkpoint is picked on splits_final's "val" (the fold's validation
    cases): only a profile with early stopping may infer from it."""
    from baselines.nnunet.trainers import BenchTrainer, TunedTrainer
    from bench.profiles import get_profile

    demo, paper = get_profile("demo"), get_profile("paper")
    assert demo.early_stopping_patience == 0 and paper.early_stopping_patience > 0
    assert TunedTrainer.inference_checkpoint(demo) == "checkpoint_final.pth"
    assert TunedTrainer.inference_checkpoint(paper) == "checkpoint_best.pth"
    assert BenchTrainer.inference_checkpoint(paper) == "checkpoint_final.pth"
