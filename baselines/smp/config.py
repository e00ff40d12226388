"""What a 2.5D model is (architecture, encoder, slices, channels) and what a profile makes of it.

Configuration is data: a registered method is an `Smp25dConfig`; `resolve` applies a run
profile (patch, batch, budget, in-plane spacing), the smoke profile's smaller encoder and the
demo profile's 2.5D budget, and the result is stored next to the checkpoint so that `load`
rebuilds exactly the trained network.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bench.profiles import Profile

# A brain window (centre 40 HU, width 80): early ischaemia is a few HU of hypodensity inside
# it, while bone and air, which would dominate an unwindowed input, saturate.
BRAIN_WINDOW_HU = (0.0, 80.0)
# Method defaults where a profile says None (the paper profile): a 2D network at native spacing.
DEFAULT_PATCH_2D = (256, 256)
DEFAULT_BATCH_2D = 12
# Smoke proves the plumbing, not the model: the named encoder is swapped for a smaller one of
# the same family so that a test trains in seconds. demo and paper keep the named encoder.
SMOKE_ENCODERS = {"resnet34": "resnet18", "resnet50": "resnet18"}

# The demo profile's budget is sized for the 3D nnU-Net: read literally, a 2.5D model takes well
# over an hour for 5 folds, and cut to fewer iterations it learns nothing. So the 2.5D methods
# read `demo` as a training time per fold with the named encoder kept (a lighter one would make
# the leaderboard row lie) and make each step cheaper instead of taking fewer: fused Adam
# (train.py) and bfloat16 autocast where the CPU computes it natively, for the architectures it
# speeds up (FPN/EfficientNet-B0's depthwise convolutions are slower in it). Iterations are
# DEMO_TRAIN_SECONDS over a step time per architecture; to trade learning for time, lower
# DEMO_TRAIN_SECONDS. The measurements behind these numbers: docs/performance.md.
DEMO_BF16 = frozenset({"Unet", "UnetPlusPlus"})
DEMO_TRAIN_SECONDS = 160.0
DEMO_STEP_SECONDS = {"Unet": 0.20, "FPN": 0.17, "UnetPlusPlus": 0.30}
DEMO_DEFAULT_STEP_SECONDS = 0.20  # an unlisted architecture: budget it like the Unet
# Checkpoints under demo: one in the middle of the run, so a crash loses at most half a fold
# while writing a large checkpoint stays a small share of training (docs/performance.md).
DEMO_CHECKPOINTS = 1


@dataclass(frozen=True)
class Smp25dConfig:
    """A registered 2.5D method: `arch` and `encoder` as segmentation-models-pytorch names."""

    arch: str = "Unet"
    encoder: str = "resnet34"
    slices: int = 3  # k adjacent axial slices per channel, the centre one is predicted
    mirrored: bool = False  # stack the registered mirror's k slices as more channels
    window_hu: tuple[float, float] = BRAIN_WINDOW_HU

    @property
    def input_channels(self) -> tuple[str, ...]:
        return ("image", "mirrored") if self.mirrored else ("image",)

    @property
    def in_channels(self) -> int:
        return len(self.input_channels) * self.slices


@dataclass(frozen=True)
class TrainPlan:
    """A config resolved against a profile: everything `fit` and `load` need, as plain data."""

    arch: str
    encoder: str
    slices: int
    input_channels: tuple[str, ...]
    window_hu: tuple[float, float]
    inplane_spacing_mm: tuple[float, float] | None  # (y, x); None: native
    patch_size: tuple[int, int]
    batch_size: int
    iterations: int
    checkpoint_every: int  # iterations
    optimizer: str
    learning_rate: float
    foreground_oversampling: float
    seed: int
    # Train under bfloat16 autocast where the CPU computes bfloat16 natively (see DEMO_BF16);
    # weights, Adam's state and the loss stay float32, and inference runs in float32.
    cpu_bfloat16: bool = False

    @property
    def in_channels(self) -> int:
        return len(self.input_channels) * self.slices

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainPlan:
        values = {**data}
        for key in ("input_channels", "window_hu", "patch_size"):
            values[key] = tuple(values[key])
        if values["inplane_spacing_mm"] is not None:
            values["inplane_spacing_mm"] = tuple(values["inplane_spacing_mm"])
        return cls(**values)


def demo_iterations(step_seconds: float) -> int:
    """Iterations that fill `DEMO_TRAIN_SECONDS` at `step_seconds` each, a multiple of 10."""
    return max(10, int(DEMO_TRAIN_SECONDS / step_seconds) // 10 * 10)


def resolve(config: Smp25dConfig, profile: Profile) -> TrainPlan:
    """The plan for `config` under `profile` (smoke shrinks the encoder, demo the budget)."""
    encoder = SMOKE_ENCODERS.get(config.encoder, config.encoder)
    if profile.name != "smoke":
        encoder = config.encoder
    spacing = profile.target_spacing_mm
    iterations_per_epoch = profile.iterations_per_epoch
    iterations = profile.epochs * iterations_per_epoch
    cpu_bfloat16 = False
    checkpoint_every = max(1, profile.checkpoint_every * iterations_per_epoch)
    if profile.name == "demo":  # the 2.5D reading of the demo budget (see DEMO_TRAIN_SECONDS)
        step = DEMO_STEP_SECONDS.get(config.arch, DEMO_DEFAULT_STEP_SECONDS)
        iterations = demo_iterations(step)
        checkpoint_every = iterations // (DEMO_CHECKPOINTS + 1)
        cpu_bfloat16 = config.arch in DEMO_BF16
    learning_rate = profile.learning_rate or (1e-3 if profile.optimizer == "adam" else 1e-2)
    return TrainPlan(
        arch=config.arch,
        encoder=encoder,
        slices=config.slices,
        input_channels=config.input_channels,
        window_hu=tuple(config.window_hu),
        inplane_spacing_mm=(spacing[1], spacing[2]) if spacing else None,
        patch_size=tuple(profile.patch_size_2d or DEFAULT_PATCH_2D),
        batch_size=profile.batch_size_2d or DEFAULT_BATCH_2D,
        iterations=iterations,
        checkpoint_every=checkpoint_every,
        optimizer=profile.optimizer,
        learning_rate=learning_rate,
        foreground_oversampling=profile.foreground_oversampling or 0.33,
        seed=profile.seed,
        cpu_bfloat16=cpu_bfloat16,
    )
