"""Instant methods for the executor tests, importable by module path in submitit's children.

Each predicts sigmoid(intensity / 10 - offset) point-wise, so its masks are known without
running it, and records the process that trained each fold (`fold_<k>.pid` in its folder).
The `Flaky` ones fail their first attempts at a fold, by raising or by killing their own
process, and count attempts in a file in their folder, which survives the process.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bench.adapter import FoldCases, MethodAdapter, Predictor
from bench.io import read_image

FAILURE_MESSAGE = "planned failure in fit"


class _Shifted:
    """Logits (0, x - offset) from the first channel; torch is imported only when called."""

    def __init__(self, offset: float):
        self.offset = offset

    def __call__(self, x):
        import torch

        return torch.cat([torch.zeros_like(x[:, :1]), x[:, :1] - self.offset], 1)


def _read(files):
    array, _ = read_image(files[0])
    return array[None].astype(np.float32) / 10.0, None


class Pointwise(MethodAdapter):
    description = "test only: sigmoid(intensity / 10 - offset)"
    offset = 0.0

    def fit(self, train_cases: FoldCases, fold: int, workdir: Path, profile) -> Predictor:
        (Path(workdir) / f"fold_{fold}.pid").write_text(str(os.getpid()), encoding="utf-8")
        return self._predictor()

    def load(self, workdir: Path, fold: int, profile) -> Predictor:
        return self._predictor()

    def _predictor(self) -> Predictor:
        return Predictor(
            network=_Shifted(self.offset),
            patch_size=(4, 8, 8),
            num_classes=2,
            mirror_axes=(2,),
            preprocess=_read,
            invert=lambda probabilities, info: probabilities,
        )


class Bright(Pointwise):
    offset = 0.0  # every voxel of the tiny dataset (30 +- 5 HU) is lesion


class Dim(Pointwise):
    offset = 3.05  # voxels above 30 HU are lesion: about half; none is on the 0.5 threshold


class Flaky(Pointwise):
    """Fails its first attempts at a fold as `failures` says: "raise" an exception or "exit"
    (the process dies without a result). Each attempt appends its pid to `fold_<k>.attempts`
    in the method's folder, which is how a resubmission knows it is one."""

    failures: tuple[str, ...] = ()

    def fit(self, train_cases: FoldCases, fold: int, workdir: Path, profile) -> Predictor:
        attempts = Path(workdir) / f"fold_{fold}.attempts"
        with attempts.open("a", encoding="utf-8") as file:
            file.write(f"{os.getpid()}\n")
        attempt = len(attempts.read_text(encoding="utf-8").split())
        if attempt <= len(self.failures):
            if self.failures[attempt - 1] == "exit":
                os._exit(3)
            raise RuntimeError(FAILURE_MESSAGE)
        return super().fit(train_cases, fold, workdir, profile)


class FailsOnce(Flaky):
    failures = ("raise",)


class CrashesThenRaises(Flaky):
    failures = ("exit", "raise")


TEST_METHODS: dict[str, type[MethodAdapter]] = {
    "exec_bright": Bright,
    "exec_dim": Dim,
    "exec_fails_once": FailsOnce,
    "exec_crashes_then_raises": CrashesThenRaises,
}
