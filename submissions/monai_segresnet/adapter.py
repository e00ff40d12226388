"""MONAI SegResNet 3D, trained on lesion-oversampled patches through the adapter contract.

An example of a complete submission that is not nnU-Net: everything it needs (sampling,
loss, checkpoint) fits in this file, and inference is left to the harness's common runner.

The network works at the profile's `target_spacing_mm` (None, as in `paper`: the image's own
grid): `preprocess` resamples the windowed image, `invert` resamples the probabilities back to
the image's grid. On the demo phantom (5 x 1.875 x 1.875 mm, 32 x 128 x 128 voxels) the demo's
5 x 3.75 x 3.75 mm gives 32 x 64 x 64, the grid nnU-Net's demo plan works on: a training patch
of the demo's 16 x 48 x 48 then spans three quarters of a slice instead of three eighths, 4x
fewer voxels are read and augmented, and inference needs 12 sliding windows a case instead of
75 (each run twice for left-right mirroring; 3 instead of 27 with a 16 x 64 x 64 patch).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from bench.adapter import FoldCases, MethodAdapter, Predictor, channel_files
from bench.io import read_image

log = logging.getLogger(__name__)

WINDOW_HU = (0.0, 80.0)
DEFAULT_PATCH = (32, 128, 128)  # where a profile says None (paper)


def network_shape(shape, spacing, target) -> tuple[int, int, int]:
    """The (z, y, x) size of a volume resampled from `spacing` to `target` mm (None: same)."""
    if target is None:
        return tuple(int(n) for n in shape)
    return tuple(max(1, round(n * s / t)) for n, s, t in zip(shape, spacing, target, strict=True))


def resample(volume: np.ndarray, shape, mode: str = "trilinear") -> np.ndarray:
    """(C, z, y, x) float32 resized to `shape` (torch on CPU: ~10 ms for a phantom case)."""
    if tuple(volume.shape[1:]) == tuple(shape):
        return volume
    kwargs = {"align_corners": False} if mode == "trilinear" else {}
    tensor = torch.from_numpy(np.ascontiguousarray(volume, np.float32))[None]
    resized = torch.nn.functional.interpolate(tensor, size=tuple(shape), mode=mode, **kwargs)
    return resized[0].numpy()


def preprocess(files, target_spacing=None):
    """Windowed channels (C, z, y, x) in [-1, 1] at `target_spacing` mm (None: the image's own
    grid), and the image's own shape for `invert`."""
    low, high = WINDOW_HU
    volumes, geometry = [], None
    for path in files:
        array, geometry = read_image(path)
        volumes.append(np.clip(array.astype(np.float32), low, high))
    data = (np.stack(volumes) - low) / (high - low) * 2 - 1
    shape = data.shape[1:]
    return resample(data, network_shape(shape, geometry.spacing_zyx_mm, target_spacing)), shape


def build_network(in_channels: int, init_filters: int):
    from monai.networks.nets import SegResNet

    return SegResNet(
        spatial_dims=3,
        in_channels=in_channels,
        out_channels=2,
        init_filters=init_filters,
        norm=("GROUP", {"num_groups": min(8, init_filters)}),  # smoke has 4 filters
    )


def sample_patch(image, label, patch, rng, oversample: float):
    """A patch of (C, z, y, x) and its label, centred on a lesion voxel with `oversample`."""
    pad = [(0, 0)] + [(0, max(0, p - n)) for p, n in zip(patch, label.shape, strict=True)]
    image = np.pad(image, pad, constant_values=-1.0)
    label = np.pad(label, pad[1:])
    lesion = np.argwhere(label)
    if len(lesion) and rng.random() < oversample:
        centre = lesion[rng.integers(len(lesion))]
        start = [
            int(np.clip(c - p // 2, 0, n - p))
            for c, p, n in zip(centre, patch, label.shape, strict=True)
        ]
    else:
        start = [int(rng.integers(0, n - p + 1)) for p, n in zip(patch, label.shape, strict=True)]
    box = tuple(slice(s, s + p) for s, p in zip(start, patch, strict=True))
    return image[(slice(None), *box)], label[box]


class SegResNetMethod(MethodAdapter):
    description = "MONAI SegResNet 3D on the image and its registered mirror"
    version = "1"
    input_channels = ("image", "mirrored")

    def __init__(self, device: str | None = None):
        self.device = device

    def _plan(self, profile) -> dict:
        spacing = profile.target_spacing_mm
        return {
            "init_filters": profile.base_features or 16,
            "patch": tuple(profile.patch_size or DEFAULT_PATCH),
            "batch": profile.batch_size or 2,
            "iterations": profile.epochs * profile.iterations_per_epoch,
            "lr": profile.learning_rate or 1e-3,
            "oversample": profile.foreground_oversampling or 0.5,
            # The profile's spacing (demo: 5 x 3.75 x 3.75 mm); None (paper): the native grid.
            "spacing": tuple(spacing) if spacing else None,
        }

    def fit(self, train_cases: FoldCases, fold: int, workdir: Path, profile) -> Predictor:
        from monai.losses import DiceCELoss

        plan = self._plan(profile)
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        cache = train_cases.cache_dir or Path(workdir) / "cache"
        data = []
        for case in train_cases.train:
            files = channel_files(case.image, self.input_channels, cache)
            image, _ = preprocess(files, plan["spacing"])
            label = (read_image(case.label)[0] > 0).astype(np.float32)[None]
            label = resample(label, image.shape[1:], mode="nearest")[0].astype(np.int64)
            data.append((image, label))
        torch.manual_seed(profile.seed + fold)
        rng = np.random.default_rng(profile.seed + fold)
        network = build_network(len(self.input_channels), plan["init_filters"]).to(device)
        # fused: one kernel for all parameters instead of a Python loop over them (on CPU the
        # loop is a large share of a small network's step); the same update rule.
        optimizer = torch.optim.Adam(
            network.parameters(), lr=plan["lr"], weight_decay=1e-5, fused=True
        )
        loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
        network.train()
        for iteration in range(plan["iterations"]):
            for group in optimizer.param_groups:
                group["lr"] = plan["lr"] * (1 - iteration / plan["iterations"]) ** 0.9
            pairs = [
                sample_patch(*data[rng.integers(len(data))], plan["patch"], rng, plan["oversample"])
                for _ in range(plan["batch"])
            ]
            images = torch.from_numpy(np.stack([p[0] for p in pairs])).float().to(device)
            labels = torch.from_numpy(np.stack([p[1] for p in pairs]))[:, None].to(device)
            loss = loss_fn(network(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        log.info("fold %d: final training loss %.3f", fold, loss.item())
        torch.save(
            {"network": network.state_dict(), "plan": plan}, Path(workdir) / f"fold_{fold}.pt"
        )
        return self.load(workdir, fold, profile)

    def load(self, workdir: Path, fold: int, profile) -> Predictor:
        state = torch.load(Path(workdir) / f"fold_{fold}.pt", map_location="cpu", weights_only=True)
        plan = state["plan"]
        spacing = plan.get("spacing")
        network = build_network(len(self.input_channels), plan["init_filters"])
        network.load_state_dict(state["network"])
        return Predictor(
            network=network.eval(),
            patch_size=tuple(plan["patch"]),
            num_classes=2,
            mirror_axes=(0, 1, 2),
            preprocess=lambda files: preprocess(files, spacing),
            invert=lambda probabilities, shape: resample(probabilities, shape),
            input_channels=self.input_channels,
            metadata={"init_filters": plan["init_filters"]},
        )
