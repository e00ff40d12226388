"""Training one fold of a 2.5D model: slice sampling, Dice + cross-entropy, checkpoints.

Every training volume is read once (windowed, resampled in-plane, float16 in memory); a batch
is drawn by picking a case and an axial slice (a lesion slice, centred on a lesion voxel, with
probability `foreground_oversampling`, as nnU-Net oversamples foreground), cropping the k
neighbouring slices of every channel and augmenting on the fly. A checkpoint with the
optimiser's state and every random generator's state is written every `checkpoint_every`
iterations, so a rerun after a crash continues where it stopped and ends with the same weights
as a run that was never interrupted. A ResNet-34 U-Net's checkpoint (weights and Adam's two
moments) is ~290 MB, so `resolve` spaces them to keep writing them a small share of training.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from baselines.smp.augment import augment
from baselines.smp.config import TrainPlan
from baselines.smp.network import build_network
from baselines.smp.slices import read_channels, read_label
from bench.adapter import LabelledCase, channel_files

log = logging.getLogger(__name__)

LATEST = "checkpoint_latest.pt"
FINAL = "model_final.pt"


@dataclass
class Volume:
    data: np.ndarray  # (C, z, y, x) float16, windowed and resampled
    label: np.ndarray  # (z, y, x) uint8
    lesion_voxels: np.ndarray  # (n, 3) indices of lesion voxels, for oversampling


def load_volumes(cases: Sequence[LabelledCase], plan: TrainPlan, cache_dir: Path) -> list[Volume]:
    volumes = []
    for case in cases:
        files = channel_files(case.image, plan.input_channels, cache_dir)
        data, _ = read_channels(files, plan.window_hu, plan.inplane_spacing_mm)
        label = read_label(case.label, data.shape[-2:])
        volumes.append(Volume(data.astype(np.float16), label, np.argwhere(label > 0)))
    return volumes


def sample_batch(
    volumes: Sequence[Volume], plan: TrainPlan, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C*k, py, px) inputs and (B, py, px) labels, zero-padded where a slice is small."""
    py, px = plan.patch_size
    images = np.zeros((plan.batch_size, plan.in_channels, py, px), np.float32) - 1.0
    labels = np.zeros((plan.batch_size, py, px), np.int64)
    for b in range(plan.batch_size):
        volume = volumes[rng.integers(len(volumes))]
        z_size, y_size, x_size = volume.label.shape
        if len(volume.lesion_voxels) and rng.random() < plan.foreground_oversampling:
            z, cy, cx = volume.lesion_voxels[rng.integers(len(volume.lesion_voxels))]
            y0, x0 = cy - py // 2, cx - px // 2
        else:
            z = rng.integers(z_size)
            y0 = rng.integers(min(0, y_size - py), max(0, y_size - py) + 1)
            x0 = rng.integers(min(0, x_size - px), max(0, x_size - px) + 1)
        y0 = int(np.clip(y0, min(0, y_size - py), max(0, y_size - py)))
        x0 = int(np.clip(x0, min(0, x_size - px), max(0, x_size - px)))
        stack = _neighbours(volume.data, int(z), plan.slices)
        ys, xs = slice(max(0, y0), y0 + py), slice(max(0, x0), x0 + px)
        oy, ox = max(0, -y0), max(0, -x0)
        crop = stack[:, ys, xs]
        images[b, :, oy : oy + crop.shape[1], ox : ox + crop.shape[2]] = crop
        labels[b, oy : oy + crop.shape[1], ox : ox + crop.shape[2]] = volume.label[z, ys, xs]
    return torch.from_numpy(images), torch.from_numpy(labels)


def _neighbours(data: np.ndarray, z: int, k: int) -> np.ndarray:
    """The (C*k, y, x) input of slice z, in the order `stack_neighbours` produces."""
    half = k // 2
    index = np.clip(np.arange(z - half, z - half + k), 0, data.shape[1] - 1)
    return data[:, index].reshape(-1, *data.shape[2:]).astype(np.float32)


def dice_ce_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy plus (1 - soft Dice of the lesion class over the batch), as nnU-Net."""
    ce = F.cross_entropy(logits, labels)
    lesion = torch.softmax(logits, 1)[:, 1]
    target = (labels == 1).float()
    intersection = (lesion * target).sum()
    dice = (2 * intersection + 1e-5) / (lesion.sum() + target.sum() + 1e-5)
    return ce + (1 - dice)


def train_fold(
    volumes: Sequence[Volume], plan: TrainPlan, fold_dir: Path, device: str, progress: bool
) -> torch.nn.Module:
    """Train (or continue training) and write `model_final.pt`; return the network."""
    from tqdm import tqdm

    torch.manual_seed(plan.seed)
    network = build_network(plan).to(device)
    optimizer = _optimizer(network, plan)
    start = 0
    rng = np.random.default_rng(plan.seed)  # batch sampling
    generator = torch.Generator().manual_seed(plan.seed)  # augmentation
    latest = fold_dir / LATEST
    if latest.is_file():
        state = torch.load(latest, map_location=device, weights_only=True)
        network.load_state_dict(state["network"])
        optimizer.load_state_dict(state["optimizer"])
        start = int(state["iteration"])
        # The generators continue where they were (the global one drives the dropout of
        # some encoders, e.g. EfficientNet's drop-connect), so resuming changes no result.
        rng.bit_generator.state = state["rng"]
        generator.set_state(state["augment_rng"])
        torch.set_rng_state(state["torch_rng"])
        log.info("resuming 2.5D training at iteration %d", start)
    bfloat16 = plan.cpu_bfloat16 and device == "cpu" and cpu_computes_bfloat16()
    if plan.cpu_bfloat16:
        log.info("bfloat16 autocast: %s", "on" if bfloat16 else "off (no native bfloat16 here)")
    running: list[float] = []
    network.train()
    with tqdm(total=plan.iterations, initial=start, desc="train", disable=not progress) as bar:
        for iteration in range(start, plan.iterations):
            for group in optimizer.param_groups:  # nnU-Net's poly decay
                group["lr"] = plan.learning_rate * (1 - iteration / plan.iterations) ** 0.9
            images, labels = augment(*sample_batch(volumes, plan, rng), generator)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
                logits = network(images.to(device))
            loss = dice_ce_loss(logits.float(), labels.to(device))
            running.append(loss.item())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(network.parameters(), 12.0)
            optimizer.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
            done = iteration + 1
            if done % max(1, plan.iterations // 8) == 0:
                log.info("iteration %d: mean loss %.3f", done, float(np.mean(running)))
                running.clear()
            if done % plan.checkpoint_every == 0 and done < plan.iterations:
                started = time.perf_counter()
                generators = {
                    "rng": rng.bit_generator.state,
                    "augment_rng": generator.get_state(),
                    "torch_rng": torch.get_rng_state(),
                }
                _save(fold_dir / LATEST, network, optimizer, done, generators)
                log.info(
                    "checkpoint at iteration %d written in %.1f s",
                    done,
                    time.perf_counter() - started,
                )
    _save(fold_dir / FINAL, network, None, plan.iterations)
    latest.unlink(missing_ok=True)
    return network.eval()


def cpu_computes_bfloat16() -> bool:
    """Whether oneDNN has native bfloat16 here (AVX512-BF16 or AMX); emulated it is slower."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _optimizer(network: torch.nn.Module, plan: TrainPlan) -> torch.optim.Optimizer:
    if plan.optimizer == "adam":
        # fused: one kernel over all parameters. torch's default per-tensor loop spent 0.20-0.26 s
        # of a 0.8 s Unet/ResNet-34 step (24 M parameters, one CPU thread, under load) in
        # `step()`; fused, 0.04 s. Same update rule.
        return torch.optim.Adam(
            network.parameters(), lr=plan.learning_rate, weight_decay=3e-5, fused=True
        )
    return torch.optim.SGD(
        network.parameters(), lr=plan.learning_rate, momentum=0.99, nesterov=True, weight_decay=3e-5
    )


def _save(path: Path, network, optimizer, iteration: int, generators: dict | None = None) -> None:
    """Atomically: a crash while saving leaves the previous checkpoint intact."""
    state = {"network": network.state_dict(), "iteration": iteration, **(generators or {})}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    partial = path.with_suffix(".tmp")
    torch.save(state, partial)
    partial.replace(path)
