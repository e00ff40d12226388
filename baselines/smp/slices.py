"""Volumes to 2.5D network input: HU window, in-plane resampling, k shifted copies per channel.

The network sees, for every axial slice z, the slices z - k//2 .. z + k//2 of each channel
(edge-padded at the volume's ends). Stacking the shifted copies as channels of one (C*k, z, y,
x) volume lets the common runner treat the model as an ordinary slice-wise (2D) network.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.io import read_image


def window(volume: np.ndarray, window_hu: tuple[float, float]) -> np.ndarray:
    """Clip to the window and scale it to [-1, 1]."""
    low, high = window_hu
    clipped = np.clip(volume.astype(np.float32), low, high)
    return (clipped - low) / (high - low) * 2.0 - 1.0


def inplane_shape(
    shape_zyx: Sequence[int], spacing_zyx_mm: Sequence[float], target_yx: Sequence[float] | None
) -> tuple[int, int]:
    """The (y, x) size after resampling to `target_yx` mm (unchanged when None)."""
    if target_yx is None:
        return int(shape_zyx[1]), int(shape_zyx[2])
    return tuple(
        max(1, int(round(n * s / t)))
        for n, s, t in zip(shape_zyx[1:], spacing_zyx_mm[1:], target_yx, strict=True)
    )


def resize_slices(volume: np.ndarray, size_yx: Sequence[int], mode: str = "bilinear") -> np.ndarray:
    """Resize every axial slice of a (C, z, y, x) array to `size_yx` (torch, fast on CPU)."""
    import torch
    import torch.nn.functional as F

    if tuple(volume.shape[-2:]) == tuple(size_yx):
        return volume
    c, z = volume.shape[:2]
    slices = torch.from_numpy(np.ascontiguousarray(volume, np.float32)).reshape(
        c * z, 1, *volume.shape[2:]
    )
    kwargs = {"align_corners": False} if mode == "bilinear" else {}
    resized = F.interpolate(slices, size=tuple(size_yx), mode=mode, **kwargs)
    return resized.reshape(c, z, *size_yx).numpy()


def stack_neighbours(volume: np.ndarray, k: int) -> np.ndarray:
    """(C, z, y, x) -> (C*k, z, y, x): for each channel, copies shifted by -k//2 .. k//2 in z."""
    half = k // 2
    index = np.clip(np.arange(volume.shape[1])[None] + np.arange(-half, k - half)[:, None], 0, None)
    index = np.minimum(index, volume.shape[1] - 1)  # (k, z): edge padding at both ends
    return volume[:, index].reshape(volume.shape[0] * k, *volume.shape[1:])


def read_channels(
    files: Sequence[Path], window_hu: tuple[float, float], target_yx: Sequence[float] | None
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The windowed, resampled channels (C, z, y', x') and the image's own (z, y, x) shape."""
    volumes = []
    for path in files:
        array, geometry = read_image(path)
        volumes.append(window(array, window_hu))
    data = np.stack(volumes)
    shape = tuple(int(n) for n in data.shape[1:])
    size = inplane_shape(shape, geometry.spacing_zyx_mm, target_yx)
    return resize_slices(data, size), shape


def read_label(path: Path, size_yx: Sequence[int]) -> np.ndarray:
    """A mask resampled like the image (nearest neighbour), as uint8 (z, y', x')."""
    label, _ = read_image(path)
    resized = resize_slices((label > 0).astype(np.float32)[None], size_yx, mode="nearest")
    return resized[0].astype(np.uint8)
