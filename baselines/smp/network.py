"""The 2D network: a segmentation-models-pytorch model, never with downloaded weights.

segmentation-models-pytorch imports timm (~6 s), so it is imported here, inside the function,
and this module is only imported by `fit` and `load`.
"""

from __future__ import annotations

from baselines.smp.config import TrainPlan

NUM_CLASSES = 2  # background, lesion


def build_network(plan: TrainPlan):
    """An untrained `plan.arch` with the `plan.encoder` encoder (`encoder_weights=None`)."""
    import segmentation_models_pytorch as smp

    return smp.create_model(
        plan.arch,
        encoder_name=plan.encoder,
        encoder_weights=None,  # explicit: nothing is downloaded, ever
        in_channels=plan.in_channels,
        classes=NUM_CLASSES,
    )
