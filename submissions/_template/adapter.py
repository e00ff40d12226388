"""A minimal working method: a per-voxel logistic model of the (windowed) HU value.

Replace the network and the training loop with yours; keep the shape of `fit` and `load`.
The harness calls `fit` once per fold and drives the returned `Predictor` through its common
runner (sliding windows, test-time mirroring, writing the masks), so you never loop over
windows yourself. This logistic model needs only 20 passes and ignores the profile's budget;
a network should train for `profile.epochs * profile.iterations_per_epoch` iterations, as
`submissions/monai_segresnet/adapter.py` does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bench.adapter import FoldCases, MethodAdapter, Predictor
from bench.io import read_image


def preprocess(files):
    """Channels (C, z, y, x) as float32 in [-1, 1] (brain window 0-80 HU); nothing to invert."""
    volumes = [np.clip(read_image(path)[0].astype(np.float32), 0, 80) / 40 - 1 for path in files]
    return np.stack(volumes), None


class Method(MethodAdapter):
    description = "template: a per-voxel logistic model of the HU value"
    input_channels = ("image",)  # and/or "mirrored": the registered mid-sagittal mirror

    def __init__(self, steps: int = 20):
        self.steps = steps  # store settings only: the work happens in fit

    def fit(self, train_cases: FoldCases, fold: int, workdir: Path, profile) -> Predictor:
        torch.manual_seed(profile.seed + fold)
        network = torch.nn.Conv3d(len(self.input_channels), 2, kernel_size=1)
        optimizer = torch.optim.Adam(network.parameters(), lr=0.1)
        for _ in range(self.steps):
            for case in train_cases.train[:4]:
                image, _ = preprocess([case.image])
                label = (read_image(case.label)[0] > 0).astype(np.int64)
                logits = network(torch.from_numpy(image)[None])
                loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(label)[None])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        path = Path(workdir) / f"fold_{fold}.pt"
        torch.save(network.state_dict(), path)
        return self.load(workdir, fold, profile)

    def load(self, workdir: Path, fold: int, profile) -> Predictor:
        network = torch.nn.Conv3d(len(self.input_channels), 2, kernel_size=1)
        network.load_state_dict(torch.load(Path(workdir) / f"fold_{fold}.pt", weights_only=True))
        return Predictor(
            network=network.eval(),
            patch_size=tuple(profile.patch_size or (16, 64, 64)),
            num_classes=2,
            mirror_axes=(0, 1, 2),
            preprocess=preprocess,
            invert=lambda probabilities, info: probabilities,  # already on the image's grid
            input_channels=self.input_channels,
        )
