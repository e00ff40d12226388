"""The 2.5D SMP methods: one adapter class, the registered variants differ only in configuration.

    smp25d_unet            Unet, ResNet-34 encoder, 3 slices of the image
    smp25d_unet_mirrored   the same, plus 3 slices of the registered mid-sagittal mirror
    smp25d_fpn_effb0       FPN, EfficientNet-B0 encoder (a lighter pairing)
    smp25d_unetpp_r18      UnetPlusPlus, ResNet-18 encoder

A fold's files live in `<workdir>/fold_<k>/`: `plan.json` (the resolved configuration, from
which `load` rebuilds the network), the checkpoint, and a resumable latest checkpoint while
training runs.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import ClassVar

from baselines.smp.config import Smp25dConfig, TrainPlan, resolve
from bench.adapter import FoldCases, MethodAdapter, Predictor
from bench.errors import BenchError
from bench.profiles import Profile, get_profile

log = logging.getLogger(__name__)

PLAN_FILE = "plan.json"


class Smp25dAdapter(MethodAdapter):
    """A segmentation-models-pytorch 2D network on stacks of k adjacent axial slices."""

    description = "2.5D segmentation-models-pytorch network"
    version = "1"
    config: ClassVar[Smp25dConfig] = Smp25dConfig()

    def __init__(self, device: str | None = None, progress: bool = False):
        self.device = device
        self.progress = progress

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls.input_channels = cls.config.input_channels

    def settings(self) -> dict:
        return {**super().settings(), **vars(self.config)}

    def fit(self, train_cases: FoldCases, fold: int, workdir: Path, profile: Profile) -> Predictor:
        from baselines.smp.train import FINAL, load_volumes, train_fold

        profile = get_profile(profile)
        plan = resolve(self.config, profile)
        plan = TrainPlan.from_dict({**plan.to_dict(), "seed": plan.seed + fold})
        fold_dir = Path(workdir) / f"fold_{fold}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        (fold_dir / PLAN_FILE).write_text(json.dumps(plan.to_dict(), indent=2), encoding="utf-8")
        if (fold_dir / FINAL).is_file():
            return self.load(workdir, fold, profile)
        cache_dir = train_cases.cache_dir or Path(workdir) / "cache"
        device = self._device()
        started = time.perf_counter()
        volumes = load_volumes(train_cases.train, plan, cache_dir)
        log.info(
            "fold %d: %d volumes read in %.1f s", fold, len(volumes), time.perf_counter() - started
        )
        network = train_fold(volumes, plan, fold_dir, device, self.progress)
        from baselines.smp.predictor import make_predictor

        return make_predictor(network.cpu(), plan)

    def load(self, workdir: Path, fold: int, profile: Profile) -> Predictor:
        import torch

        from baselines.smp.network import build_network
        from baselines.smp.predictor import make_predictor
        from baselines.smp.train import FINAL

        fold_dir = Path(workdir) / f"fold_{fold}"
        if not (fold_dir / FINAL).is_file() or not (fold_dir / PLAN_FILE).is_file():
            raise BenchError(f"fold {fold} of this 2.5D model is not trained in {fold_dir}")
        plan = TrainPlan.from_dict(json.loads((fold_dir / PLAN_FILE).read_text(encoding="utf-8")))
        network = build_network(plan)
        state = torch.load(fold_dir / FINAL, map_location="cpu", weights_only=True)
        network.load_state_dict(state["network"])
        return make_predictor(network.eval(), plan)

    def _device(self) -> str:
        import torch

        return self.device or ("cuda" if torch.cuda.is_available() else "cpu")


class Smp25dUnet(Smp25dAdapter):
    description = "2.5D SMP Unet, ResNet-34 encoder, 3 adjacent slices"
    config = Smp25dConfig("Unet", "resnet34", slices=3)


class Smp25dUnetMirrored(Smp25dAdapter):
    description = "2.5D SMP Unet, ResNet-34, 3 slices of the image and of its registered mirror"
    config = Smp25dConfig("Unet", "resnet34", slices=3, mirrored=True)


class Smp25dFpnEffB0(Smp25dAdapter):
    description = "2.5D SMP FPN, EfficientNet-B0 encoder, 3 adjacent slices"
    config = Smp25dConfig("FPN", "efficientnet-b0", slices=3)


class Smp25dUnetPlusPlusR18(Smp25dAdapter):
    description = "2.5D SMP UnetPlusPlus, ResNet-18 encoder, 3 adjacent slices"
    config = Smp25dConfig("UnetPlusPlus", "resnet18", slices=3)
