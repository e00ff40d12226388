"""nnU-Net's own `nnUNetPredictor` on the checkpoint of a `run_method` result: the reference
that the common runner is tested (agreement) and timed (benchmark) against."""

from __future__ import annotations

import torch

from baselines.nnunet.adapters import NnUNet3d
from baselines.nnunet.predictor import load_fold
from baselines.nnunet.workspace import Workspace


def nnunet_predictor(result, mirror_axes: tuple[int, ...], fold: int = 0):
    """An `nnUNetPredictor` holding fold `fold` of an nnunet3d run, mirroring on `mirror_axes`."""
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    adapter = NnUNet3d()
    trainer_dir = Workspace(result.layout.method_dir / "nnunet").trainer_dir(
        adapter.trainer_name, adapter.configuration
    )
    network, plans, config, dataset_json, _ = load_fold(
        trainer_dir, fold, adapter.trainer, adapter.trainer.inference_checkpoint(result.profile)
    )
    predictor = nnUNetPredictor(
        tile_step_size=0.5,
        use_gaussian=True,
        use_mirroring=True,
        perform_everything_on_device=False,
        device=torch.device("cpu"),
        allow_tqdm=False,
    )
    predictor.manual_initialization(
        network,
        plans,
        config,
        [network.state_dict()],
        dataset_json,
        adapter.trainer_name,
        mirror_axes,
    )
    return predictor
