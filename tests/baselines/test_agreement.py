"""The common runner agrees with nnU-Net's own `nnUNetPredictor` on the same checkpoint.

Same network, same checkpoint, same test-time mirroring (left-right), nnU-Net's overlap 0.5.
The runner blends windows with nnU-Net's Gaussian and places them where nnU-Net does (MONAI's
default would start the x windows of these 56-voxel-wide images at 0, 16, 24, nnU-Net at 0,
12, 24), so what remains is nnU-Net's float16 accumulation of the logits (it moves logits near
0 by up to ~0.05) and its resampling of logits where the runner resamples probabilities (a
no-op here). After 60 training iterations 2-3% of the lesion voxels still differed, most
likely voxels whose logits were near 0 (such a model has many); the model here trains for 200.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.io import read_image
from bench.pipeline import run_method
from bench.profiles import get_profile
from bench.runner import output_paths
from bench.runner.threads import cpu_threads
from tests.baselines.reference_predictor import nnunet_predictor

pytestmark = pytest.mark.slow
PROFILE = get_profile("smoke").with_overrides(
    base_features=8, max_features=32, epochs=10, iterations_per_epoch=20, val_iterations_per_epoch=1
)


@pytest.fixture(scope="module")
def trained(head_dataset, run_root):
    """nnunet3d trained for 200 iterations on fold 0, its validation cases predicted."""
    return run_method(
        "nnunet3d", head_dataset, PROFILE, run_root / "agreement", folds=[0], progress=False
    )


def nnunet_reference(result, image_path):
    """nnU-Net's own path: its predictor, its preprocessing, its export to the image grid."""
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    # the smoke profile mirrors left-right only
    predictor = nnunet_predictor(result, mirror_axes=(2,))
    image, properties = SimpleITKIO().read_images([str(image_path)])
    segmentation, probabilities = predictor.predict_single_npy_array(
        image, properties, None, None, True
    )
    return segmentation, probabilities[1]


def test_runner_matches_nnunet_predictor(trained, head_dataset):
    fold = trained.folds[0]
    assert len(fold.records) >= 3
    lesion_voxels = 0
    for record in fold.records:
        case = head_dataset.case(record["case"])
        mask_path, probability_path, _ = output_paths(trained.layout.predictions_dir, case.id)
        mask, _ = read_image(mask_path)
        probability, _ = read_image(probability_path)
        with cpu_threads(1):
            reference_mask, reference_probability = nnunet_reference(trained, case.image)
        assert reference_mask.shape == mask.shape
        both = int(mask.sum() + reference_mask.sum())
        dice = 2 * int(np.sum(mask & (reference_mask > 0))) / both if both else 1.0
        assert dice >= 0.99, f"{case.id}: mask Dice {dice:.4f}"
        assert np.abs(probability - reference_probability).mean() < 0.01
        lesion_voxels += int(mask.sum())
    assert lesion_voxels > 100  # the model predicts lesions: the comparison is not vacuous
