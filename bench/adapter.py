"""The method adapter contract that every built-in method and submission implements.

Like a scikit-learn estimator: the constructor stores settings only, `fit` does the work and
returns a `Predictor`, plain data that the common runner drives (`bench.runner`). Adapters never
run their own sliding window: every method is inferred by the same code, so runtimes and
test-time augmentation are comparable.

A method learns from one fold of the fixed split (`FoldCases`) inside a working folder that
the harness gives it and keeps between runs; `load` restores a trained fold from that folder,
so a rerun, or inference in another process, needs no retraining. Whether a fold finished is
the harness's business (an atomically written marker after `fit` returns), not the method's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from bench.errors import BenchError

if TYPE_CHECKING:
    import numpy as np

    from bench.profiles import Profile

#: Input channels a method may declare, materialised by `channel_files`.
CHANNELS: tuple[str, ...] = ("image", "mirrored")


@dataclass(frozen=True)
class LabelledCase:
    """One training case: the NCCT image and the reference rater's mask (plain paths)."""

    id: str
    patient: str
    image: Path
    label: Path


@dataclass(frozen=True)
class FoldIds:
    """The case ids of one fold of the split (`bench.splits.Split` holds every fold's)."""

    fold: int
    train: tuple[str, ...]
    train_additional: tuple[str, ...]
    val: tuple[str, ...]


@dataclass(frozen=True)
class FoldCases:
    """What a method may learn from in one fold.

    `train` are the first scans of the training patients, `train_additional` their extra scans
    (a method decides whether to use them), `val` the fold's validation cases with their
    reference labels. `val` is what the fold is scored on, so no choice may be made on it: a
    method that selects a checkpoint or stops early does so on the fold's inner hold-out
    (`holdouts`, training patients the harness kept out of `train`; none where the profile's
    `postprocess_holdout` is 0). `split` and `all_cases` describe every fold, and `holdouts`
    each fold's hold-out in `split`'s order, for methods that, like nnU-Net, prepare one
    dataset for all folds at once.
    """

    fold: int
    train: tuple[LabelledCase, ...]
    train_additional: tuple[LabelledCase, ...]
    val: tuple[LabelledCase, ...]
    split: tuple[FoldIds, ...] = ()
    holdouts: tuple[tuple[str, ...], ...] = ()  # per entry of `split`; () without a hold-out
    all_cases: Mapping[str, LabelledCase] = field(default_factory=dict)
    dataset_sha256: str | None = None
    cache_dir: Path | None = None  # where derived channels are cached (shared with the runner)

    def fold_ids(self, fold: int) -> FoldIds:
        """The ids of `fold`; a fold the split lacks is an error (never a random fallback)."""
        for entry in self.split:
            if entry.fold == fold:
                return entry
        raise BenchError(f"the split has no fold {fold} (folds {[f.fold for f in self.split]})")

    def holdout(self, fold: int) -> tuple[str, ...]:
        """The ids of `fold`'s inner hold-out; () where the profile holds none out."""
        if not self.holdouts:
            return ()
        return self.holdouts[self.split.index(self.fold_ids(fold))]  # fold_ids: missing folds


@dataclass
class Predictor:
    """What the common runner needs to infer a trained model; every field is plain data.

    - `preprocess(channel_files)` reads one case's channels (in `input_channels` order) and
      returns a float32 array (C, z, y, x) in network space plus whatever `invert` needs.
    - `network` maps a batch (B, C, *patch_size) to logits (B, num_classes, *patch_size).
      A slice-wise (2D) network has a 2-entry `patch_size` and receives (B, C, y, x).
    - `mirror_axes`: the axes of the network-space volume along which the model may be mirrored
      at test time; the runner intersects them with the profile's, which name image axes.
    - `axes_from_image[i]` is the image axis (0=z, 1=y, 2=x) that network-space axis i holds
      (nnU-Net transposes the coarsest axis first).
    - `invert(probabilities, info)` maps (num_classes, network-space grid) probabilities to
      (num_classes, z, y, x) probabilities on the image's own grid.
    """

    network: Callable[[Any], Any]
    patch_size: tuple[int, ...]
    num_classes: int
    mirror_axes: tuple[int, ...]
    preprocess: Callable[[Sequence[Path]], tuple[np.ndarray, Any]]
    invert: Callable[[np.ndarray, Any], np.ndarray]
    input_channels: tuple[str, ...] = ("image",)
    axes_from_image: tuple[int, int, int] = (0, 1, 2)
    foreground_class: int = 1
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def is_2d(self) -> bool:
        return len(self.patch_size) == 2

    def tta_axes(self, image_axes: Sequence[int]) -> tuple[int, ...]:
        """Network-space axes to mirror for the requested image axes, where the model allows."""
        wanted = {i for i, axis in enumerate(self.axes_from_image) if axis in set(image_axes)}
        return tuple(sorted(wanted & set(self.mirror_axes)))


class MethodAdapter(ABC):
    """Base class of every registered method."""

    #: One line for `bench list`.
    description: ClassVar[str] = ""
    #: Bumped when the method's behaviour changes, so cached results become stale.
    version: ClassVar[str] = "1"
    #: The channels the method reads, e.g. ("image",) or ("image", "mirrored").
    input_channels: ClassVar[tuple[str, ...]] = ("image",)

    @abstractmethod
    def fit(self, train_cases: FoldCases, fold: int, workdir: Path, profile: Profile) -> Predictor:
        """Train on `train_cases` for `fold` and return a predictor.

        `workdir` is the method's own folder for this dataset and profile, shared by all folds
        and kept between runs: put fold outputs in a subfolder and continue from checkpoints
        found there (a rerun after a crash calls `fit` again).
        """

    def load(self, workdir: Path, fold: int, profile: Profile) -> Predictor:
        """Restore the predictor that `fit` returned for `fold` from `workdir`."""
        raise BenchError(
            f"{type(self).__name__} cannot reload a trained fold; delete the fold's marker "
            "to train it again"
        )

    def settings(self) -> dict[str, Any]:
        """The constructor's settings (recorded in the results file)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


def channel_files(image: Path, channels: Sequence[str], cache_dir: Path) -> list[Path]:
    """The files of a case's input channels; derived channels are computed once and cached."""
    files = []
    for channel in channels:
        if channel == "image":
            files.append(Path(image))
        elif channel == "mirrored":
            from bench.mirror import mirrored_channel

            files.append(mirrored_channel(image, cache_dir / "mirrored"))
        else:
            raise BenchError(f"unknown input channel {channel!r} (known: {', '.join(CHANNELS)})")
    return files
