"""The built-in methods as data: name -> where the adapter class lives and one line about it.

The registry reads this table and imports a class only when its method is used, so `bench list`
imports no deep-learning library and nothing here imports `baselines` (the registry stays a
leaf: no module it imports registers anything into it).
"""

from __future__ import annotations

from typing import NamedTuple


class Builtin(NamedTuple):
    target: str  # "module:Class"
    description: str  # the line `bench list` shows


_NNUNET = "baselines.nnunet.adapters"
_SMP = "baselines.smp.adapters"

BUILTIN_METHODS: dict[str, Builtin] = {
    "nnunet3d": Builtin(
        f"{_NNUNET}:NnUNet3d",
        "nnU-Net v2 3d_fullres as nnU-Net plans it, trained on the reference rater",
    ),
    "nnunet2d": Builtin(f"{_NNUNET}:NnUNet2d", "nnU-Net v2 2d configuration (slice-wise U-Net)"),
    "nnunet3d_tuned": Builtin(
        f"{_NNUNET}:NnUNet3dTuned",
        "3D + focal/Dice loss, dropout, weight decay, momentum, early stopping",
    ),
    "nnunet3d_mirrored": Builtin(
        f"{_NNUNET}:NnUNet3dMirrored",
        "3D + the mid-sagittal mirror, rigidly co-registered, as a second channel",
    ),
    "nnunet3d_mirrored_tuned": Builtin(
        f"{_NNUNET}:NnUNet3dMirroredTuned",
        "mirrored + tuned + additional baseline scans: the study's best model",
    ),
    "smp25d_unet": Builtin(
        f"{_SMP}:Smp25dUnet", "2.5D SMP Unet (ResNet-34), 3 adjacent axial slices as channels"
    ),
    "smp25d_unet_mirrored": Builtin(
        f"{_SMP}:Smp25dUnetMirrored",
        "2.5D SMP Unet (ResNet-34), slices of the image and its registered mirror",
    ),
    "smp25d_fpn_effb0": Builtin(
        f"{_SMP}:Smp25dFpnEffB0", "2.5D SMP FPN (EfficientNet-B0), 3 adjacent axial slices"
    ),
    "smp25d_unetpp_r18": Builtin(
        f"{_SMP}:Smp25dUnetPlusPlusR18",
        "2.5D SMP UnetPlusPlus (ResNet-18), 3 adjacent axial slices",
    ),
}
