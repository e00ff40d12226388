"""The bench trainer's own rules, on stand-ins (no training): strict split, early stopping on
the inner hold-out, never on the cases a fold is scored on."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from baselines.nnunet.adapters import NnUNet3d, nnunet_split
from baselines.nnunet.trainers import BenchTrainer
from baselines.nnunet.workspace import Workspace, write_splits_final
from bench.adapter import FoldIds
from bench.errors import BenchError
from bench.pipeline import fold_cases
from bench.profiles import get_profile
from bench.splits import load_split, make_split, write_split
from tests.factories import write_tiny_dataset


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

    class Probe(TunedTrainer):
        def __init__(self):  # only configure() is under test: skip nnU-Net's constructor
            self.weight_decay = 3e-5  # nnU-Net's default

    trainer = Probe()
    profile = get_profile("paper")
    trainer.configure(profile)
    assert trainer.weight_decay == TUNED.weight_decay != 3e-5
    assert trainer.early_stopping_patience == profile.early_stopping_patience


def test_the_tuned_trainer_chooses_no_checkpoint_on_the_folds_validation_cases():
    """nnU-Net's best checkpoint is picked on splits_final's "val": the fold's validation
    cases unless the profile stops early (then its inner hold-out), so only a profile with
    early stopping may infer from it."""
    from baselines.nnunet.trainers import TunedTrainer

    demo, paper = get_profile("demo"), get_profile("paper")
    assert demo.early_stopping_patience == 0 and paper.early_stopping_patience > 0
    assert TunedTrainer.inference_checkpoint(demo) == "checkpoint_final.pth"
    assert TunedTrainer.inference_checkpoint(paper) == "checkpoint_best.pth"
    assert BenchTrainer.inference_checkpoint(paper) == "checkpoint_final.pth"


@pytest.fixture
def dataset(tmp_path):
    """10 patients in 2 folds: 5 training patients a fold, of which a fifth is 1."""
    data = write_tiny_dataset(tmp_path / "tiny", n_patients=10, second_scans=(1, 2))
    write_split(data, make_split(data, n_folds=2))
    return data


def _written(workspace: Workspace) -> list[dict]:
    return json.loads((workspace.preprocessed_dataset / "splits_final.json").read_bytes())


def test_splits_final_validates_on_the_holdout_only_where_the_profile_stops_early(
    dataset, tmp_path
):
    cases = fold_cases(dataset, load_split(dataset), 0, holdout_share=0.2)
    workspace = Workspace(tmp_path / "nnunet")
    demo, paper = get_profile("demo"), get_profile("paper")
    assert not demo.early_stopping_patience and paper.early_stopping_patience

    write_splits_final(workspace, nnunet_split(cases, demo))  # as before: the validation cases
    assert _written(workspace) == [
        {"train": sorted(f.train), "val": sorted(f.val)} for f in cases.split
    ]
    before = {i for f in cases.split for i in (*f.train, *f.val)}
    demo_cases = NnUNet3d().dataset_cases(cases, nnunet_split(cases, demo))
    assert {c.id for c in demo_cases} == before  # the demo's raw dataset is unchanged

    folds = nnunet_split(cases, paper)
    write_splits_final(workspace, folds)
    for entry, fold, held in zip(_written(workspace), cases.split, cases.holdouts, strict=True):
        assert entry == {"train": sorted(fold.train), "val": sorted(held)}
        assert held and not set(held) & {*fold.train, *fold.val}
    paper_cases = {c.id for c in NnUNet3d().dataset_cases(cases, folds)}
    assert {i for held in cases.holdouts for i in held} <= paper_cases


def test_early_stopping_without_a_holdout_is_refused_before_anything_is_written(dataset, tmp_path):
    paper = get_profile("paper")
    no_holdout = paper.with_overrides(postprocess_holdout=0.0)
    cases = fold_cases(dataset, load_split(dataset), 0)  # the profile holds nobody out
    with pytest.raises(BenchError) as refused:
        NnUNet3d().fit(cases, 0, tmp_path / "work", no_holdout)
    message = str(refused.value)
    assert "\n" not in message and "profile 'paper'" in message
    assert "postprocess_holdout" in message and "early_stopping_patience=0" in message
    assert not (tmp_path / "work").exists()

    tiny = paper.with_overrides(postprocess_holdout=0.01)  # 1 in 100 of 5 patients: nobody
    cases = fold_cases(dataset, load_split(dataset), 0, holdout_share=0.01)
    with pytest.raises(BenchError, match="fold 0's is empty.*raise postprocess_holdout"):
        nnunet_split(cases, tiny)
