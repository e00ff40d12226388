"""A trained nnU-Net fold as a `bench.adapter.Predictor`, for the common runner.

The runner gets nnU-Net's own pieces: `DefaultPreprocessor.run_case` (transpose, crop to the
non-zero box, CT normalisation, resampling to the planned spacing) as the preprocessing, the
network built by the trainer class from the saved plans, and the inverse of the preprocessing
as nnU-Net's export does it (resample to the cropped shape with the plan's probability
resampling, put the crop back with background outside, undo the transpose). One difference:
nnU-Net resamples logits and applies the softmax after; the runner's contract hands over
probabilities, which are resampled instead (identical when no resampling is needed).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from bench.adapter import Predictor
from bench.errors import BenchError


def load_fold(trainer_dir: Path, fold: int, trainer_class: type, checkpoint_name: str) -> tuple:
    """(network, plans_manager, configuration_manager, dataset_json, checkpoint) of a fold."""
    path = Path(trainer_dir) / f"fold_{fold}" / checkpoint_name
    if not path.is_file():
        raise BenchError(f"no trained model for fold {fold}: {path} is missing")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    plans_manager = PlansManager(
        json.loads((Path(trainer_dir) / "plans.json").read_text(encoding="utf-8"))
    )
    dataset_json = json.loads((Path(trainer_dir) / "dataset.json").read_text(encoding="utf-8"))
    configuration = checkpoint["init_args"]["configuration"]
    config = plans_manager.get_configuration(configuration)
    network = trainer_class.build_network_architecture(
        plans_manager,
        config,
        determine_num_input_channels(plans_manager, config, dataset_json),
        plans_manager.get_label_manager(dataset_json).num_segmentation_heads,
        enable_deep_supervision=False,
    )
    network.load_state_dict(checkpoint["network_weights"])
    network.eval()
    return network, plans_manager, config, dataset_json, checkpoint


def nnunet_predictor(
    trainer_dir: Path,
    fold: int,
    trainer_class: type,
    input_channels: Sequence[str],
    checkpoint_name: str,
) -> Predictor:
    """The runner's view of a trained fold, from its checkpoint `checkpoint_name`."""
    network, plans_manager, config, dataset_json, checkpoint = load_fold(
        trainer_dir, fold, trainer_class, checkpoint_name
    )
    label_manager = plans_manager.get_label_manager(dataset_json)
    preprocessor = config.preprocessor_class(verbose=False)
    patch_size = tuple(int(p) for p in config.patch_size)
    allowed = checkpoint.get("inference_allowed_mirroring_axes") or ()
    # nnU-Net counts mirror axes over the patch's dimensions; a 2D patch covers (y, x).
    offset = 3 - len(patch_size)
    mirror_axes = tuple(int(a) + offset for a in allowed)

    def preprocess(files: Sequence[Path]) -> tuple[np.ndarray, dict]:
        data, _, properties = preprocessor.run_case(
            [str(f) for f in files], None, plans_manager, config, dataset_json
        )
        return data, properties

    def invert(probabilities: np.ndarray, properties: dict[str, Any]) -> np.ndarray:
        forward = plans_manager.transpose_forward
        spacing = [properties["spacing"][i] for i in forward]
        cropped_shape = properties["shape_after_cropping_and_before_resampling"]
        current = (
            config.spacing
            if len(config.spacing) == len(cropped_shape)
            else [spacing[0], *config.spacing]
        )
        resampled = config.resampling_fn_probabilities(
            probabilities, cropped_shape, current, spacing
        )
        full = label_manager.revert_cropping_on_probabilities(
            np.asarray(resampled, dtype=np.float32),
            properties["bbox_used_for_cropping"],
            properties["shape_before_cropping"],
        )
        return np.asarray(full).transpose([0, *[i + 1 for i in plans_manager.transpose_backward]])

    return Predictor(
        network=network,
        patch_size=patch_size,
        num_classes=label_manager.num_segmentation_heads,
        mirror_axes=mirror_axes,
        preprocess=preprocess,
        invert=invert,
        input_channels=tuple(input_channels),
        axes_from_image=tuple(int(a) for a in plans_manager.transpose_forward),
        metadata={
            "trainer": checkpoint["trainer_name"],
            "configuration": checkpoint["init_args"]["configuration"],
            "checkpoint": checkpoint_name,
            "epochs_trained": int(checkpoint["current_epoch"]),
            "spacing_zyx_mm": [float(s) for s in config.spacing],
            "curves": training_curves(Path(trainer_dir) / f"fold_{fold}"),
        },
    )


def training_curves(fold_dir: Path) -> dict[str, list[float]]:
    """Per-epoch training loss and validation pseudo-Dice of the whole run, from the last
    checkpoint's log (the best one, which the tuned trainer infers with, stops at its epoch)."""
    for name in ("checkpoint_final.pth", "checkpoint_latest.pth"):
        path = fold_dir / name
        if path.is_file():
            logged = torch.load(path, map_location="cpu", weights_only=False).get("logging", {})
            return {
                "train_loss": [round(float(v), 6) for v in logged.get("train_losses", [])],
                "val_pseudo_dice": [round(float(v), 6) for v in logged.get("mean_fg_dice", [])],
            }
    return {"train_loss": [], "val_pseudo_dice": []}
