"""An honest, trivially trained challenge submission: lesion where HU is below a threshold.

`fit` learns the threshold (the mean HU of the training images) and saves it as one number;
`load` restores it. The network is a 1x1x1 "convolution" that the common runner drives.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from bench.adapter import FoldCases, MethodAdapter, Predictor
from bench.io import read_image


def preprocess(files):
    return np.stack([read_image(path)[0].astype(np.float32) for path in files]), None


class ThresholdNet(torch.nn.Module):
    """Logits (background, lesion) = (x - hu, hu - x): lesion where the voxel is below hu."""

    def __init__(self, hu: float):
        super().__init__()
        self.hu = hu

    def forward(self, batch):
        below = self.hu - batch[:, :1]
        return torch.cat([-below, below], dim=1)


class Method(MethodAdapter):
    description = "challenge test: HU threshold"
    input_channels = ("image",)

    def fit(self, train_cases: FoldCases, fold: int, workdir: Path, profile) -> Predictor:
        values = [read_image(case.image)[0].mean() for case in train_cases.train]
        (Path(workdir) / f"fold_{fold}.json").write_text(json.dumps({"hu": float(np.mean(values))}))
        return self.load(workdir, fold, profile)

    def load(self, workdir: Path, fold: int, profile) -> Predictor:
        config = json.loads((Path(workdir) / f"fold_{fold}.json").read_text())
        return Predictor(
            network=ThresholdNet(float(config["hu"])),
            patch_size=(4, 8, 8),
            num_classes=2,
            mirror_axes=(0, 1, 2),
            preprocess=preprocess,
            invert=lambda probabilities, info: probabilities,
            input_channels=self.input_channels,
        )
