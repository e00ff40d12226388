"""Run profiles: network size, patch, resolution, training budget and test-time settings.

A profile is data, and every default lives here. Methods read what applies to them (an
nnU-Net adapter caps nnU-Net's own plan with `patch_size`, `base_features`...; an SMP adapter
may read only the training budget), and the results file records the profile by name so the
leaderboard never ranks a `demo` model next to a `paper` one.

The `demo` choices (a patch and resolution a 2-core CPU trains in minutes, left-right mirroring
only, Adam, 32 epochs on nnU-Net's 33% lesion-centred patches, a postprocessing chosen per fold)
rest on runs whose numbers are in docs/performance.md ("Profiles: the numbers behind the demo
choices") and docs/methods.md ("What the demo model learns").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from bench.errors import BenchError


@dataclass(frozen=True)
class Profile:
    """Everything a run's cost and fidelity depend on. `None` means "what the method plans"."""

    name: str
    description: str
    # --- resolution and network -------------------------------------------------------------
    target_spacing_mm: tuple[float, float, float] | None = None  # (z, y, x); None: method's plan
    base_features: int | None = None  # features of the first stage; None: method's plan (32)
    max_features: int | None = None  # cap on features per stage; None: method's plan (320)
    patch_size: tuple[int, int, int] | None = None  # upper bound (z, y, x) on the 3D patch
    patch_size_2d: tuple[int, int] | None = None  # upper bound (y, x) on the 2D patch
    batch_size: int | None = None  # 3D batch; None: method's plan
    batch_size_2d: int | None = None
    # --- training budget ---------------------------------------------------------------------
    # nnU-Net's SGD (lr 1e-2, momentum 0.99, poly decay) is tuned for 250,000 iterations; on a
    # budget of a few hundred it stays on "all background". Short profiles therefore train with
    # Adam, under the same poly decay.
    optimizer: str = "sgd"  # "sgd" (nnU-Net's) or "adam"
    learning_rate: float | None = None  # None: 1e-2 for SGD (nnU-Net's), 1e-3 for Adam
    foreground_oversampling: float | None = None  # share of patches centred on lesion; 0.33
    epochs: int = 1000
    iterations_per_epoch: int = 250
    val_iterations_per_epoch: int = 50
    augmentation_workers: int | None = None  # background augmentation processes; None: default
    checkpoint_every: int = 50  # epochs between resumable checkpoints
    # epochs without a better pseudo-Dice on the fold's inner hold-out (tuned nnU-Net), so an
    # early-stopping profile needs a `postprocess_holdout` (never the scored validation cases)
    early_stopping_patience: int = 50
    seed: int = 0
    # torch's CPU threads for training and inference; None: every core. Part of the profile
    # because CPU results differ bit by bit between thread counts (`bench.runner.threads`).
    threads: int | None = None
    # --- inference ---------------------------------------------------------------------------
    tta_mirror_axes: tuple[int, ...] = (0, 1, 2)  # (z, y, x) axes; intersected with the method's
    sw_overlap: float = 0.5  # nnU-Net's tile step 0.5
    sw_batch_size: int = 4  # windows per forward pass: on a CPU batching pays
    sw_batch_size_2d: int = 16  # slice windows are ~16x smaller than 3D ones
    threshold: float = 0.5  # a voxel is lesion where its probability is above this
    # --- postprocessing, chosen per fold on an inner hold-out (`bench.runner.postprocess`) --
    postprocess_holdout: float = 0.0  # share of training patients held out; 0: none
    postprocess_thresholds: tuple[float, ...] = ()  # candidates; empty: `threshold` only
    postprocess_min_component_ml: tuple[float, ...] = ()  # candidate minimum sizes
    postprocess_intracranial: bool = False  # also try the image's intracranial region

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_overrides(self, **changes: Any) -> Profile:
        """A copy with some fields changed (tests and experiments), keeping the name honest."""
        unknown = sorted(set(changes) - set(self.to_dict()))
        if unknown:
            raise BenchError(f"unknown profile field(s): {', '.join(unknown)}")
        return replace(self, **changes)


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="smoke",
            description="seconds: proves every method runs end to end; the model learns nothing",
            base_features=4,
            max_features=16,
            patch_size=(16, 32, 32),
            patch_size_2d=(32, 32),
            batch_size=2,
            batch_size_2d=4,
            optimizer="adam",
            epochs=2,
            iterations_per_epoch=2,
            val_iterations_per_epoch=1,
            augmentation_workers=0,
            checkpoint_every=1,
            # none: it would need a hold-out (smoke has none), and in 2 epochs it never stopped
            early_stopping_patience=0,
            threads=1,
            tta_mirror_axes=(2,),
            sw_batch_size=4,
        ),
        Profile(
            name="demo",
            description="CPU default: one method on the phantom, all folds, on 2 cores",
            target_spacing_mm=(5.0, 3.75, 3.75),
            base_features=8,
            max_features=64,
            patch_size=(16, 48, 48),
            patch_size_2d=(64, 64),
            batch_size=2,
            batch_size_2d=8,
            optimizer="adam",
            learning_rate=3e-3,
            foreground_oversampling=0.33,  # nnU-Net's; 0.66 learned no specificity
            epochs=32,
            iterations_per_epoch=25,
            val_iterations_per_epoch=2,
            augmentation_workers=1,
            checkpoint_every=1,
            early_stopping_patience=0,  # none: the budget is short already
            threads=1,  # the augmentation worker holds the second core
            tta_mirror_axes=(2,),
            sw_batch_size=4,
            postprocess_holdout=0.2,
            postprocess_thresholds=(0.5, 0.6, 0.7, 0.8, 0.9),
            postprocess_min_component_ml=(1.0, 5.0),
            postprocess_intracranial=True,
        ),
        Profile(
            name="paper",
            description="the study's settings on a GPU: nnU-Net's own plans, native spacing, "
            "batch 2, 500 epochs",
            batch_size=2,
            epochs=500,
            iterations_per_epoch=250,
            val_iterations_per_epoch=50,
            checkpoint_every=10,
            early_stopping_patience=50,  # on the hold-out below
            tta_mirror_axes=(0, 1, 2),
            sw_batch_size=4,
            # early stopping's judge; its postprocessing candidates stay the threshold alone,
            # so the choice is nnU-Net's own "largest component or not"
            postprocess_holdout=0.2,
        ),
    )
}

DEFAULT_PROFILE = "demo"


def get_profile(name: str | Profile) -> Profile:
    """The named profile (a Profile passes through, so callers may hand in an override)."""
    if isinstance(name, Profile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise BenchError(
            f"unknown profile {name!r} (choose one of {', '.join(sorted(PROFILES))})"
        ) from None
