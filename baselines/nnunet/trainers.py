"""nnU-Net trainer subclasses, constructed directly (`Trainer(plans, configuration, fold,
dataset_json, device)`), each changing one thing over its parent.

`BenchTrainer` adapts nnU-Net's trainer to the harness: a profile sets the budget, the fixed
split is the only split (no random fallback), checkpoints are written atomically (a crash never
leaves a half-written file that a resume would load), nnU-Net's prints go to the log, and the
training loop can stop early. It never runs nnU-Net's own final validation (which starts a pool
of 8 export processes even on 2 cores): the common runner infers every method instead.

`TunedTrainer` is the study's tuned variant: focal loss with Dice, dropout in the encoder and
decoder, L2 weight decay, a different momentum, early stopping on the pseudo-Dice of nnU-Net's
"val" (the fold's inner hold-out under such a profile, `baselines.nnunet.adapters.nnunet_split`).
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from batchgenerators.dataloading.multi_threaded_augmenter import MultiThreadedAugmenter
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.loss.robust_ce_loss import RobustCrossEntropyLoss
from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.default_n_proc_DA import get_allowed_n_proc_DA
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

from bench.errors import BenchError
from bench.io import atomic_path
from bench.profiles import Profile

log = logging.getLogger(__name__)
_CUDA = torch.device("cuda")  # nnU-Net's default device
# Early stopping waits until the validation pseudo-Dice's EMA has reached this (see should_stop).
MIN_USEFUL_PSEUDO_DICE = 0.05
WORKERS_VARIABLE = "nnUNet_n_proc_DA"  # nnU-Net's count of background augmentation processes


class BenchTrainer(nnUNetTrainer):
    """nnU-Net's trainer with a profile's budget, a strict split and resumable checkpoints."""

    @classmethod
    def inference_checkpoint(cls, profile: Profile) -> str:
        """Which checkpoint the predictor loads."""
        return "checkpoint_final.pth"

    def __init__(
        self,
        plans: dict,
        configuration: str,
        fold: int,
        dataset_json: dict,
        device: torch.device = _CUDA,
    ):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.early_stopping_patience: int | None = None
        self.seed = 0  # the profile's (`configure`); each epoch draws from its own seed
        self.progress: Callable[[int], None] | None = None  # called after each iteration
        # No progress.png: matplotlib costs ~3 s a plot on 2 cores; the same curves are in
        # every checkpoint's "logging" entry.
        self.logger.plot_progress_png = lambda folder: None

    def configure(self, profile: Profile) -> None:
        """Apply the profile's budget; call before training starts (or a checkpoint loads)."""
        self.num_epochs = profile.epochs
        self.num_iterations_per_epoch = profile.iterations_per_epoch
        self.num_val_iterations_per_epoch = profile.val_iterations_per_epoch
        self.save_every = max(1, profile.checkpoint_every)
        self.seed = profile.seed
        if profile.optimizer not in ("sgd", "adam"):
            raise BenchError(f"unknown optimizer {profile.optimizer!r} (sgd or adam)")
        self.optimizer_name = profile.optimizer
        default_lr = 1e-2 if profile.optimizer == "sgd" else 1e-3
        self.initial_lr = profile.learning_rate or default_lr
        if profile.foreground_oversampling is not None:
            self.oversample_foreground_percent = profile.foreground_oversampling

    def configure_optimizers(self):
        return self.make_optimizer(momentum=0.99)

    def make_optimizer(self, momentum: float):
        """nnU-Net's SGD (Nesterov, `momentum`) or Adam, both under nnU-Net's poly decay."""
        parameters = self.network.parameters()
        if getattr(self, "optimizer_name", "sgd") == "adam":
            optimizer = torch.optim.Adam(
                parameters, self.initial_lr, weight_decay=self.weight_decay
            )
        else:
            optimizer = torch.optim.SGD(
                parameters,
                self.initial_lr,
                weight_decay=self.weight_decay,
                momentum=momentum,
                nesterov=True,
            )
        return optimizer, PolyLRScheduler(optimizer, self.initial_lr, self.num_epochs)

    def print_to_log_file(self, *args, also_print_to_console=True, add_timestamp=True):
        super().print_to_log_file(*args, also_print_to_console=False, add_timestamp=add_timestamp)
        if also_print_to_console:
            log.debug("nnU-Net: %s", " ".join(str(a) for a in args))

    def do_split(self):
        """The fold from splits_final.json; a missing file or fold is an error, not 80:20."""
        path = Path(self.preprocessed_dataset_folder_base) / "splits_final.json"
        if not path.is_file():
            raise BenchError(f"{path} is missing: the fixed split was not written")
        splits = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(self.fold, int) or not 0 <= self.fold < len(splits):
            raise BenchError(
                f"{path} has no fold {self.fold} (it has {len(splits)}); refusing nnU-Net's "
                "random 80:20 fallback"
            )
        return splits[self.fold]["train"], splits[self.fold]["val"]

    def get_dataloaders(self):
        """nnU-Net's loaders, with background augmentation made reproducible.

        nnU-Net's `NonDetMultiThreadedAugmenter` seeds its workers from the operating system
        and hands batches over in whichever order workers finish, so two runs of the same
        command trained on other patches. nnU-Net builds its loaders in-process here, and
        batchgenerators' `MultiThreadedAugmenter` runs them in the background with seeds from
        the profile's seed and the fold, in a fixed order: every run gets the same batches.
        """
        workers = get_allowed_n_proc_DA()
        saved = os.environ.get(WORKERS_VARIABLE)
        os.environ[WORKERS_VARIABLE] = "0"  # read by nnU-Net at each call
        try:
            train, val = super().get_dataloaders()
        finally:
            if saved is None:
                del os.environ[WORKERS_VARIABLE]
            else:
                os.environ[WORKERS_VARIABLE] = saved
        if workers == 0:
            return train, val  # in-process augmentation: `seed_epoch` seeds it
        return self._seeded(train, workers, stream=0), self._seeded(val, max(1, workers // 2), 1)

    def _seeded(self, loader, workers: int, stream: int) -> MultiThreadedAugmenter:
        state = np.random.SeedSequence([self.seed, self.fold, stream]).generate_state(workers)
        return MultiThreadedAugmenter(
            loader.data_loader,
            loader.transform,
            workers,
            num_cached_per_queue=max(2, 6 // workers),
            seeds=[int(s) for s in state],
            pin_memory=self.device.type == "cuda",
            wait_time=0.002,
        )

    def save_checkpoint(self, filename: str) -> None:
        if self.local_rank != 0 or self.disable_checkpointing:
            return super().save_checkpoint(filename)
        with atomic_path(filename) as tmp:
            super().save_checkpoint(str(tmp))

    def should_stop(self) -> bool:
        """Early stopping: no better EMA pseudo-Dice for `early_stopping_patience` epochs.

        Never in the first half of the budget, nor before the model has found lesions (a
        best EMA of at least `MIN_USEFUL_PSEUDO_DICE`): a short run starts with epochs of
        "all background", and an untrained network's first-epoch speckle (measured: a
        pseudo-Dice of 0.0024, then 0.0) would otherwise be the best and stop the run.
        """
        if not self.early_stopping_patience:
            return False
        ema = np.asarray(self.logger.get_value("ema_fg_dice", step=None), dtype=float)
        earliest = max(self.early_stopping_patience, self.num_epochs // 2) + 1
        if len(ema) < earliest or not np.nanmax(ema, initial=0.0) >= MIN_USEFUL_PSEUDO_DICE:
            return False
        since_best = len(ema) - 1 - int(np.nanargmax(ema))
        if since_best >= self.early_stopping_patience:
            log.info(
                "early stopping after epoch %d (best %d)", len(ema) - 1, len(ema) - 1 - since_best
            )
            return True
        return False

    def run_training(self) -> None:
        """nnU-Net's loop, owned here so that early stopping can end it."""
        self.on_train_start()
        while self.current_epoch < self.num_epochs and not self.should_stop():
            seed_epoch(self.seed, self.fold, self.current_epoch)
            self.on_epoch_start()
            self.on_train_epoch_start()
            outputs = []
            for _ in range(self.num_iterations_per_epoch):
                outputs.append(self.train_step(next(self.dataloader_train)))
                if self.progress:
                    self.progress(1)
            self.on_train_epoch_end(outputs)
            with torch.no_grad():
                self.on_validation_epoch_start()
                val_outputs = [
                    self.validation_step(next(self.dataloader_val))
                    for _ in range(self.num_val_iterations_per_epoch)
                ]
                self.on_validation_epoch_end(val_outputs)
            self.on_epoch_end()
        self.on_train_end()


def seed_epoch(seed: int, fold: int, epoch: int) -> None:
    """Seed every generator an epoch draws from (batches, patches, augmentation, dropout).

    A checkpoint holds the weights and the optimiser but not the generators' states, so a
    training resumed at epoch e would draw other batches than the uninterrupted run did; with
    a seed per epoch it draws the same ones and ends with the same weights (exactly so with
    in-process augmentation, as on the smoke profile: background workers keep their own).
    """
    value = int(np.random.SeedSequence([seed, fold, epoch]).generate_state(1)[0])
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


@dataclass(frozen=True)
class TunedHyperParameters:
    """The tuned variant's settings (nnU-Net's defaults in comments)."""

    focal_gamma: float = 2.0  # cross-entropy (gamma 0)
    dropout_p: float = 0.1  # no dropout
    weight_decay: float = 1e-4  # 3e-5
    momentum: float = 0.95  # 0.99 (SGD; short profiles train with Adam, whose betas stay)


TUNED = TunedHyperParameters()


class FocalLoss(RobustCrossEntropyLoss):
    """Focal loss (Lin et al. 2017) on nnU-Net's target layout: (B, 1, ...) float labels."""

    def __init__(self, gamma: float):
        super().__init__(reduction="none")
        self.gamma = gamma

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ce = super().forward(input, target)
        return ((1.0 - torch.exp(-ce)) ** self.gamma * ce).mean()


class TunedTrainer(BenchTrainer):
    """Focal + Dice loss, dropout, weight decay, momentum, early stopping (best checkpoint)."""

    hyper = TUNED

    @classmethod
    def inference_checkpoint(cls, profile: Profile) -> str:
        # nnU-Net picks its best checkpoint by the pseudo-Dice on splits_final's "val" list:
        # the fold's inner hold-out where the profile stops early (`nnunet_split`), else the
        # fold's validation cases, so without early stopping the last checkpoint is used.
        return "checkpoint_best.pth" if profile.early_stopping_patience else "checkpoint_final.pth"

    def configure(self, profile: Profile) -> None:
        super().configure(profile)
        self.weight_decay = self.hyper.weight_decay  # read when the optimizer is built
        self.early_stopping_patience = profile.early_stopping_patience

    def configure_optimizers(self):
        return self.make_optimizer(momentum=self.hyper.momentum)  # SGD only; Adam keeps its betas

    def _build_loss(self):
        loss = super()._build_loss()  # Dice + cross-entropy, maybe deep-supervision wrapped
        compound = loss.loss if isinstance(loss, DeepSupervisionWrapper) else loss
        compound.ce = FocalLoss(self.hyper.focal_gamma)
        return loss

    @staticmethod
    def build_network_architecture(
        plans_manager,
        configuration_manager,
        num_input_channels,
        num_output_channels,
        enable_deep_supervision=True,
    ):
        kwargs = dict(configuration_manager.network_arch_init_kwargs)
        # Element-wise, not channel (Dropout3d) dropout: dropping whole feature maps of a
        # demo network's 8 first-stage channels kept its validation pseudo-Dice at 0 for all
        # 8 demo epochs (2 folds), where the untuned network reached 0.68.
        kwargs["dropout_op"] = "torch.nn.Dropout"
        kwargs["dropout_op_kwargs"] = {"p": TUNED.dropout_p, "inplace": True}
        return get_network_from_plans(
            configuration_manager.network_arch_class_name,
            kwargs,
            configuration_manager.network_arch_init_kwargs_req_import,
            num_input_channels,
            num_output_channels,
            allow_init=True,
            deep_supervision=enable_deep_supervision,
        )
