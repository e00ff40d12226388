"""The common runner on toy predictors whose answers are known without running the runner.

A point-wise network that outputs the logits (0, x) gives every window the same answer at a
voxel, so whatever the window placement and blending, the lesion probability must be
sigmoid(x) exactly, on the image's own grid and header.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from bench.adapter import Predictor
from bench.errors import InputError
from bench.io import Geometry, read_image, write_image
from bench.provenance import available_cores
from bench.runner import CaseInput, InferenceSettings, is_finished, output_paths, predict_cases
from bench.runner.threads import best_thread_count
from bench.runner.window import MirroredNetwork, mirror_combinations

# A rotated, anisotropic, off-origin grid: any header mix-up shows.
ROTATED = sitk.VersorRigid3DTransform((0.0, 0.0, np.sin(0.1), np.cos(0.1))).GetMatrix()
GEOMETRY = Geometry((6, 20, 18), (0.7, 0.8, 3.0), (10.0, -20.0, 5.0), tuple(ROTATED))
SETTINGS = InferenceSettings(sw_batch_size=3, tta_mirror_axes=(2,), device="cpu", threads=1)


class Pointwise(torch.nn.Module):
    """Logits (0, x) from the first channel: P(lesion) = sigmoid(x) whatever the window."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.zeros_like(x[:, :1]), x[:, :1]], 1)


def read_as_network_input(files):
    array, _ = read_image(files[0])
    return array[None].astype(np.float32) / 10.0, None


def toy_predictor(patch=(4, 8, 8), **overrides) -> Predictor:
    values = dict(
        network=Pointwise(),
        patch_size=patch,
        num_classes=2,
        mirror_axes=(0, 1, 2),
        preprocess=read_as_network_input,
        invert=lambda probabilities, info: probabilities,
    )
    return Predictor(**{**values, **overrides})


def write_cases(root: Path, n: int = 3, seed: int = 0) -> list[CaseInput]:
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        path = root / "images" / f"c{i}.nii.gz"
        write_image(rng.normal(0, 20, GEOMETRY.shape_zyx).astype(np.int16), GEOMETRY, path)
        cases.append(CaseInput(f"c{i}", path))
    return cases


def expected_probability(case: CaseInput) -> np.ndarray:
    array, _ = read_image(case.image)
    return 1.0 / (1.0 + np.exp(-array.astype(np.float64) / 10.0))


@pytest.mark.parametrize("patch", [(4, 8, 8), (8, 8)], ids=["3d", "2d"])
def test_probability_and_mask_are_exact_and_on_the_image_grid(tmp_path, patch):
    cases = write_cases(tmp_path)
    summary = predict_cases(toy_predictor(patch), cases, tmp_path / "out", SETTINGS, tmp_path)
    assert [r.case for r in summary.records] == ["c0", "c1", "c2"]
    for case in cases:
        mask_path, probability_path, record_path = output_paths(tmp_path / "out", case.id)
        probability, geometry = read_image(probability_path)
        mask, mask_geometry = read_image(mask_path)
        assert geometry.mismatch(GEOMETRY) is None and mask_geometry.mismatch(GEOMETRY) is None
        assert probability.dtype == np.float32 and mask.dtype == np.uint8
        np.testing.assert_allclose(probability, expected_probability(case), atol=1e-5)
        np.testing.assert_array_equal(mask, (expected_probability(case) > 0.5).astype(np.uint8))
        record = json.loads(record_path.read_text(encoding="utf-8"))
        assert record["windows"] > 1 and record["mirrors"] == 2 and record["latency_s"] > 0


def test_finished_cases_are_skipped_and_half_written_ones_redone(tmp_path):
    cases = write_cases(tmp_path)
    out = tmp_path / "out"
    predict_cases(toy_predictor(), cases, out, SETTINGS, tmp_path)
    mask_c0 = output_paths(out, "c0")[0]
    before = mask_c0.stat().st_mtime_ns
    output_paths(out, "c1")[2].unlink()  # a crash after the mask, before the record
    (out / ".c2.nii.gz.abc.tmp.nii.gz").write_bytes(b"half")  # a temp file left behind
    assert not is_finished(out, "c1") and is_finished(out, "c2")
    summary = predict_cases(toy_predictor(), cases, out, SETTINGS, tmp_path)
    assert [r.case for r in summary.records] == ["c1"]
    assert summary.skipped == ["c0", "c2"]
    assert mask_c0.stat().st_mtime_ns == before


def test_a_failing_case_raises_and_keeps_the_finished_ones(tmp_path):
    cases = write_cases(tmp_path)

    def preprocess(files):
        if files[0].name.startswith("c1"):
            raise InputError("cannot be read", "c1", files[0])
        return read_as_network_input(files)

    with pytest.raises(InputError, match="case c1"):
        predict_cases(
            toy_predictor(preprocess=preprocess), cases, tmp_path / "out", SETTINGS, tmp_path
        )
    assert is_finished(tmp_path / "out", "c0")
    assert not is_finished(tmp_path / "out", "c2")


def test_an_inverse_that_misses_the_image_grid_is_an_error(tmp_path):
    predictor = toy_predictor(invert=lambda p, info: p[:, :, :-1])
    with pytest.raises(RuntimeError, match="invert returned shape"):
        predict_cases(predictor, write_cases(tmp_path, 1), tmp_path / "out", SETTINGS, tmp_path)


def test_reading_the_next_case_overlaps_inference(tmp_path):
    delay = 0.25

    class Slow(Pointwise):
        def forward(self, x):
            time.sleep(delay)
            return super().forward(x)

    def slow_preprocess(files):
        time.sleep(delay)
        return read_as_network_input(files)

    predictor = toy_predictor(
        patch=GEOMETRY.shape_zyx, network=Slow(), preprocess=slow_preprocess, mirror_axes=()
    )
    summary = predict_cases(
        predictor, write_cases(tmp_path, 4), tmp_path / "out", SETTINGS, tmp_path
    )
    sequential = sum(r.preprocess_s + r.inference_s for r in summary.records)
    assert summary.wall_s < 0.85 * sequential


def test_mirroring_averages_each_window_with_its_flipped_copies():
    class Ramp(torch.nn.Module):
        """Logit 1 rises along x: not mirror-symmetric, so TTA changes it."""

        def forward(self, x):
            ramp = torch.arange(x.shape[-1], dtype=x.dtype).expand_as(x[:, :1])
            return torch.cat([torch.zeros_like(ramp), ramp], 1)

    windows = torch.zeros(2, 1, 3, 4, 5)
    averaged = MirroredNetwork(Ramp(), axes=(2,))(windows)
    np.testing.assert_allclose(averaged[:, 1].numpy(), 2.0)  # (0 + 4) / 2 everywhere
    assert len(mirror_combinations((0, 1, 2))) == 7  # nnU-Net's 8 passes, less the plain one


def test_tta_axes_follow_the_networks_axis_order():
    predictor = toy_predictor(mirror_axes=(0, 1, 2), axes_from_image=(2, 0, 1))
    assert predictor.tta_axes((2,)) == (0,)  # the image's x is the network's first axis
    assert toy_predictor(mirror_axes=(1, 2)).tta_axes((0, 2)) == (2,)


def test_thread_count_is_one_or_every_core():
    assert best_thread_count() in {1, available_cores()}
