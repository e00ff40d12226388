"""What a 2.5D model is (architecture, encoder, slices, channels) and what a profile makes of it.

Configuration is data: a registered method is an `Smp25dConfig`; `resolve` applies a run
profile (patch, batch, budget, in-plane spacing) and the smoke profile's smaller encoder, and the
result is stored next to the checkpoint so that `load` rebuilds exactly the trained network.
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


def resolve(config: Smp25dConfig, profile: Profile) -> TrainPlan:
    """The plan for `config` under `profile` (the smoke profile shrinks the encoder)."""
    encoder = SMOKE_ENCODERS.get(config.encoder, config.encoder)
    if profile.name != "smoke":
        encoder = config.encoder
    spacing = profile.target_spacing_mm
    iterations_per_epoch = profile.iterations_per_epoch
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
        iterations=profile.epochs * iterations_per_epoch,
        checkpoint_every=max(1, profile.checkpoint_every * iterations_per_epoch),
        optimizer=profile.optimizer,
        learning_rate=learning_rate,
        foreground_oversampling=profile.foreground_oversampling or 0.33,
        seed=profile.seed,
    )
