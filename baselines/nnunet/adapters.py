"""The five nnU-Net v2 methods of the study; each changes one thing over its parent.

    nnunet3d                  3d_fullres as nnU-Net plans it
    nnunet2d                  the 2d configuration
    nnunet3d_tuned            TunedTrainer (focal + Dice, dropout, weight decay, momentum,
                              early stopping)
    nnunet3d_mirrored         a second channel: the registered mid-sagittal mirror
    nnunet3d_mirrored_tuned   mirrored + tuned + the training patients' additional scans

All folds of a method share one nnU-Net workspace (`<workdir>/nnunet`), laid out as nnU-Net's
own cross-validation would be: one raw dataset of every case, one plan and preprocessing, the
fixed split as splits_final.json (`nnunet_split`: its "val" is each fold's inner hold-out where
the profile stops early), and one `fold_<k>` results folder per fold.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.adapter import FoldCases, FoldIds, LabelledCase, MethodAdapter, Predictor
from bench.errors import BenchError
from bench.profiles import Profile, get_profile

log = logging.getLogger(__name__)


class NnUNetAdapter(MethodAdapter):
    """nnU-Net v2 trained on the reference rater through its Python API."""

    description = "nnU-Net v2"
    # 2: the mirror normalised with the image's statistics; seeded augmentation workers
    version = "2"
    input_channels = ("image",)
    configuration = "3d_fullres"
    trainer_name = "BenchTrainer"  # a class in baselines.nnunet.trainers
    use_additional_scans = False

    def __init__(self, device: str | None = None, progress: bool = True):
        self.device = device
        self.progress = progress

    @property
    def trainer(self) -> type:
        from baselines.nnunet import trainers

        return getattr(trainers, self.trainer_name)

    def fit(self, train_cases: FoldCases, fold: int, workdir: Path, profile: Profile) -> Predictor:
        profile = get_profile(profile)
        train_cases.fold_ids(fold)  # a fold the split lacks is an error, before any work
        workspace = self.prepare(train_cases, workdir, profile)
        prepared = time.perf_counter()
        self._train(workspace, fold, profile)
        log.info("fold %d trained in %.1f s", fold, time.perf_counter() - prepared)
        return self.load(workdir, fold, profile)

    def prepare(self, train_cases: FoldCases, workdir: Path, profile: Profile):
        """The shared workspace's raw dataset, plans, preprocessed data and split, made once.

        Folds trained in parallel processes share the workspace: the first one prepares it
        under the workspace's lock, the others wait and find it done (nothing is redone).
        """
        from baselines.nnunet.planning import plan_and_preprocess
        from baselines.nnunet.workspace import (
            Workspace,
            nnunet_environment,
            preparation_lock,
            write_raw_dataset,
            write_splits_final,
        )

        profile = get_profile(profile)
        folds = nnunet_split(train_cases, profile)  # refuses early stopping without a hold-out
        workspace = Workspace(Path(workdir) / "nnunet")
        cache_dir = train_cases.cache_dir or Path(workdir) / "cache"
        started = time.perf_counter()
        cases = self.dataset_cases(train_cases, folds)
        with (
            preparation_lock(workspace),
            nnunet_environment(workspace, augmentation_workers=1),  # the planner needs >= 1
        ):
            write_raw_dataset(workspace, cases, self.input_channels, cache_dir)
            plan_and_preprocess(workspace, self.configuration, profile, self.input_channels)
            write_splits_final(workspace, folds, self.use_additional_scans)
        elapsed = time.perf_counter() - started
        log.info("nnU-Net dataset of %d cases ready in %.1f s", len(cases), elapsed)
        return workspace

    def dataset_cases(self, cases: FoldCases, folds: Sequence[FoldIds]) -> list[LabelledCase]:
        """Every case any fold trains or validates on, in the bench's split or in nnU-Net's
        `folds` (nnU-Net plans from all of them). A hold-out is some other fold's validation
        cases in a k-fold split, so nnU-Net's folds add a case only to an unusual split."""
        every = (*cases.split, *folds)
        ids = {i for f in every for i in (*f.train, *f.val)}
        if self.use_additional_scans:
            ids |= {i for f in every for i in f.train_additional}
        return [cases.all_cases[i] for i in sorted(ids)]

    def _train(self, workspace, fold: int, profile: Profile) -> None:
        """Train one fold, continuing from nnU-Net's latest checkpoint when there is one."""
        import torch
        from tqdm import tqdm

        from baselines.nnunet.workspace import PLANS, nnunet_environment
        from bench.io import remove_stale_temporaries

        output = workspace.trainer_dir(self.trainer_name, self.configuration) / f"fold_{fold}"
        if output.is_dir():  # checkpoints a killed run was writing (the fold is ours alone)
            remove_stale_temporaries(output)
        if (output / "checkpoint_final.pth").is_file():
            log.info("fold %d: nnU-Net training already finished", fold)
            return
        _seed(profile.seed + fold)
        device = torch.device(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        total = profile.epochs * profile.iterations_per_epoch
        with (
            nnunet_environment(workspace, augmentation_workers=profile.augmentation_workers),
            tqdm(
                total=total,
                desc=f"train fold {fold}",
                unit="it",
                disable=None if self.progress else True,  # None: only on a terminal
                leave=False,
            ) as bar,
        ):
            plans = json.loads(
                (workspace.preprocessed_dataset / f"{PLANS}.json").read_text(encoding="utf-8")
            )
            dataset_json = json.loads(
                (workspace.preprocessed_dataset / "dataset.json").read_text(encoding="utf-8")
            )
            latest = output / "checkpoint_latest.pth"
            plans["continue_training"] = latest.is_file()
            trainer = self.trainer(plans, self.configuration, fold, dataset_json, device)
            trainer.configure(profile)
            if latest.is_file():
                trainer.load_checkpoint(str(latest))
                log.info(
                    "fold %d: resuming nnU-Net training at epoch %d", fold, trainer.current_epoch
                )
                bar.update(trainer.current_epoch * profile.iterations_per_epoch)
            trainer.progress = bar.update
            trainer.run_training()  # with the threads the harness chose

    def load(self, workdir: Path, fold: int, profile: Profile) -> Predictor:
        from baselines.nnunet.predictor import nnunet_predictor
        from baselines.nnunet.workspace import Workspace

        workspace = Workspace(Path(workdir) / "nnunet")
        trainer_dir = workspace.trainer_dir(self.trainer_name, self.configuration)
        checkpoint = self.trainer.inference_checkpoint(profile)
        return nnunet_predictor(trainer_dir, fold, self.trainer, self.input_channels, checkpoint)


def nnunet_split(cases: FoldCases, profile: Profile) -> list[FoldIds]:
    """The split as splits_final.json gives it to nnU-Net, folds in order.

    nnU-Net computes its per-epoch pseudo-Dice on a fold's "val", and the tuned trainer stops
    early and picks its best checkpoint on it: where the profile stops early, "val" is the
    fold's inner hold-out (training patients), never the cases the fold is scored on. Without
    early stopping nothing is chosen on "val", and it stays the fold's validation cases (the
    demo's trained models and curves depend on it).
    """
    folds = sorted(cases.split, key=lambda f: f.fold)
    if profile.early_stopping_patience <= 0:
        return folds
    if not cases.holdouts:
        raise BenchError(
            f"profile '{profile.name}' stops early but holds no training patients out to stop "
            "on; set its postprocess_holdout (e.g. 0.2) or early_stopping_patience=0"
        )
    for fold in folds:
        if not cases.holdout(fold.fold):
            raise BenchError(
                f"profile '{profile.name}' stops early on an inner hold-out, but fold "
                f"{fold.fold}'s is empty (postprocess_holdout {profile.postprocess_holdout} of "
                f"{len(fold.train)} training cases); raise postprocess_holdout"
            )
    return [replace(fold, val=cases.holdout(fold.fold)) for fold in folds]


def _seed(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class NnUNet3d(NnUNetAdapter):
    description = "nnU-Net v2 3d_fullres as nnU-Net plans it, trained on the reference rater"


class NnUNet2d(NnUNetAdapter):
    description = "nnU-Net v2 2d configuration (slice-wise U-Net)"
    configuration = "2d"


class NnUNet3dTuned(NnUNet3d):
    description = "3d_fullres, focal+Dice loss, dropout, weight decay, momentum, early stopping"
    version = "3"  # infers from the last checkpoint where the profile has no early stopping
    trainer_name = "TunedTrainer"


class NnUNet3dMirrored(NnUNet3d):
    description = "3d_fullres with the registered mid-sagittal mirror as a second channel"
    input_channels = ("image", "mirrored")


class NnUNet3dMirroredTuned(NnUNet3dMirrored):
    description = "mirrored + tuned + additional baseline scans: the study's best model"
    version = "3"  # infers from the last checkpoint where the profile has no early stopping
    trainer_name = "TunedTrainer"
    use_additional_scans = True
