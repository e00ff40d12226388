"""A trained 2.5D model as the common runner's `Predictor`: a slice-wise network.

`preprocess` returns the (C*k, z, y', x') stack of shifted slices, so the runner's 2D path
(one-slice windows, patch (py, px)) feeds the network exactly what it was trained on, and
`invert` resizes the probabilities back to the image's in-plane grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from baselines.smp.config import TrainPlan
from baselines.smp.network import NUM_CLASSES
from baselines.smp.slices import read_channels, resize_slices, stack_neighbours
from bench.adapter import Predictor


def make_predictor(network: Any, plan: TrainPlan) -> Predictor:
    def preprocess(files: Sequence[Path]) -> tuple[np.ndarray, tuple[int, int, int]]:
        data, shape = read_channels(files, plan.window_hu, plan.inplane_spacing_mm)
        return stack_neighbours(data, plan.slices), shape

    def invert(probabilities: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
        return resize_slices(probabilities, shape[1:])

    return Predictor(
        network=network,
        patch_size=tuple(plan.patch_size),
        num_classes=NUM_CLASSES,
        mirror_axes=(1, 2),  # in-plane flips; z mirroring means nothing to a slice network
        preprocess=preprocess,
        invert=invert,
        input_channels=plan.input_channels,
        metadata={"arch": plan.arch, "encoder": plan.encoder, "slices": plan.slices},
    )
