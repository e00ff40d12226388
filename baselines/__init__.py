"""Built-in methods, registered lazily so that `bench list` imports no deep-learning library.

Each entry names the adapter class as "module:Class" and says in one line what it does.
"""

from bench.registry import METHODS

_NNUNET = "baselines.nnunet.adapters"

BUILTIN_METHODS: dict[str, tuple[str, str]] = {
    "nnunet3d": (
        f"{_NNUNET}:NnUNet3d",
        "nnU-Net v2 3d_fullres as nnU-Net plans it, trained on the reference rater",
    ),
    "nnunet2d": (f"{_NNUNET}:NnUNet2d", "nnU-Net v2 2d configuration (slice-wise U-Net)"),
    "nnunet3d_tuned": (
        f"{_NNUNET}:NnUNet3dTuned",
        "3D + focal/Dice loss, dropout, weight decay, momentum, early stopping",
    ),
    "nnunet3d_mirrored": (
        f"{_NNUNET}:NnUNet3dMirrored",
        "3D + the mid-sagittal mirror, rigidly co-registered, as a second channel",
    ),
    "nnunet3d_mirrored_tuned": (
        f"{_NNUNET}:NnUNet3dMirroredTuned",
        "mirrored + tuned + additional baseline scans: the study's best model",
    ),
    "smp25d_unet": (
        "baselines.smp.adapters:Smp25dUnet",
        "2.5D SMP Unet (ResNet-34), 3 adjacent axial slices as channels",
    ),
    "smp25d_unet_mirrored": (
        "baselines.smp.adapters:Smp25dUnetMirrored",
        "2.5D SMP Unet (ResNet-34), slices of the image and its registered mirror",
    ),
    "smp25d_fpn_effb0": (
        "baselines.smp.adapters:Smp25dFpnEffB0",
        "2.5D SMP FPN (EfficientNet-B0), 3 adjacent axial slices",
    ),
    "smp25d_unetpp_r18": (
        "baselines.smp.adapters:Smp25dUnetPlusPlusR18",
        "2.5D SMP UnetPlusPlus (ResNet-18), 3 adjacent axial slices",
    ),
}

for _name, (_target, _description) in BUILTIN_METHODS.items():
    METHODS.register_lazy(_name, _target, _description)
