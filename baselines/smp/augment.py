"""Cheap nnU-Net-like augmentation of a 2D batch, on the fly in torch (no worker processes).

Flips along y and x, a small in-plane rotation and scaling, intensity scale and shift, and
Gaussian noise: the parts of nnU-Net's pipeline that matter most for a short budget, at a cost
of milliseconds per batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MAX_ROTATION_DEG = 15.0
SCALE_RANGE = (0.9, 1.1)
INTENSITY_SCALE = 0.1  # multiplicative, +-
INTENSITY_SHIFT = 0.1  # additive, +- (inputs are in [-1, 1])
NOISE_STD = 0.05


def augment(
    images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment (B, C, y, x) images and (B, y, x) integer labels with the same geometry."""
    b = images.shape[0]

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator) * (high - low) + low

    angle = uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG, b) * math.pi / 180
    scale = uniform(*SCALE_RANGE, b)
    flip_y = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0)
    flip_x = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos * flip_x, -sin * flip_y
    theta[:, 1, 0], theta[:, 1, 1] = sin * flip_x, cos * flip_y
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    images = F.grid_sample(
        images, grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    labels = F.grid_sample(
        labels[:, None].float(), grid, mode="nearest", padding_mode="zeros", align_corners=False
    )[:, 0].long()
    gain = uniform(1 - INTENSITY_SCALE, 1 + INTENSITY_SCALE, b, 1, 1, 1)
    shift = uniform(-INTENSITY_SHIFT, INTENSITY_SHIFT, b, 1, 1, 1)
    noise = torch.randn(images.shape, generator=generator) * NOISE_STD
    return images * gain + shift + noise, labels
