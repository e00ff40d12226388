"""Calibration of the default (demo) phantom against the study's expert agreement.

The paper reports, as medians over cases ("(B, A)" = reference B, test A):
  (B, A): SDT5 0.67, Dice 0.46, VS 0.77, Precision 0.61, Recall 0.41
  (C, A): SDT5 0.64, Dice 0.38, VS 0.60, Precision 0.27, Recall 0.69
and rater A's lesion volume over all patients' first scans (a patient without a lesion counts
with 0 ml) has a median of 12 ml (IQR 5-30 ml). The metrics are computed
here independently of the harness's evaluator: overlap with numpy, surface Dice with DeepMind's
`surface-distance` (the implementation the study's evaluator used). Pairs where either mask is
empty are undefined (NaN in the evaluator) and left out of the medians.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from bench.data.phantom import build_phantom
from bench.data.phantom.lesion import (
    VOLUME_LOG_SD_ABOVE,
    VOLUME_LOG_SD_BELOW,
    VOLUME_MEDIAN_ML,
)
from bench.data.phantom.profiles import PROFILES
from bench.io import read_image

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

TARGETS = {
    ("B", "A"): {"SDT5": 0.67, "Dice": 0.46, "VS": 0.77, "Precision": 0.61, "Recall": 0.41},
    ("C", "A"): {"SDT5": 0.64, "Dice": 0.38, "VS": 0.60, "Precision": 0.27, "Recall": 0.69},
}
TOLERANCE = 0.08
DEMO = PROFILES["demo"]


def pair_metrics(
    reference: np.ndarray, test: np.ndarray, spacing_zyx_mm: tuple[float, ...]
) -> dict[str, float] | None:
    """The five agreement metrics of one case, or None when either mask is empty."""
    from surface_distance import compute_surface_dice_at_tolerance, compute_surface_distances

    reference, test = reference > 0, test > 0
    if not reference.any() or not test.any():
        return None
    tp = float(np.count_nonzero(reference & test))
    fp = float(np.count_nonzero(~reference & test))
    fn = float(np.count_nonzero(reference & ~test))
    distances = compute_surface_distances(reference, test, tuple(spacing_zyx_mm))
    return {
        "SDT5": float(compute_surface_dice_at_tolerance(distances, 5.0)),
        "Dice": 2 * tp / (2 * tp + fp + fn),
        "VS": 1 - abs(fn - fp) / (2 * tp + fp + fn),
        "Precision": tp / (tp + fp),
        "Recall": tp / (tp + fn),
    }


def agreement_medians(dataset) -> dict[tuple[str, str], dict[str, float]]:
    rows: dict[tuple[str, str], list[dict[str, float]]] = {pair: [] for pair in TARGETS}
    for case in dataset.cases:
        masks = {}
        for name in ("A", "B", "C"):
            masks[name], geometry = read_image(case.labels[name])
        for reference, test in TARGETS:
            result = pair_metrics(masks[reference], masks[test], geometry.spacing_zyx_mm)
            if result is not None:
                rows[(reference, test)].append(result)
    return {
        pair: {metric: float(np.median([r[metric] for r in found])) for metric in TARGETS[pair]}
        for pair, found in rows.items()
    }


def volumes_ml(dataset, name: str, first_scans_only: bool = False) -> np.ndarray:
    out = []
    for case in dataset.cases:
        if first_scans_only and case.scan_index != 0:
            continue
        array, geometry = read_image(case.labels[name])
        out.append(float(np.count_nonzero(array)) * geometry.voxel_volume_ml)
    return np.asarray(out)


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """The default dataset, generated once per test session."""
    return build_phantom(tmp_path_factory.mktemp("phantom") / "demo", "demo", progress=False)


@pytest.fixture(scope="session")
def medians(demo):
    return agreement_medians(demo)


@pytest.mark.parametrize(
    ("pair", "metric"), [(pair, metric) for pair in TARGETS for metric in TARGETS[pair]]
)
def test_expert_agreement_matches_the_paper(medians, pair, metric):
    measured, target = medians[pair][metric], TARGETS[pair][metric]
    assert abs(measured - target) <= TOLERANCE, f"{pair} {metric}: {measured:.3f} vs {target}"


def test_rater_a_first_scan_volumes_over_all_patients_match_the_paper(demo):
    """The paper's quantity: the reference rater's volume on every patient's first scan,
    lesion-free patients and missed lesions included as 0 ml."""
    volumes = volumes_ml(demo, "A", first_scans_only=True)
    assert volumes.size == DEMO.n_patients
    q1, median, q3 = np.percentile(volumes, [25, 50, 75])
    assert 10.0 <= median <= 14.0, median
    assert 3.5 <= q1 <= 7.0, q1
    assert 22.0 <= q3 <= 38.0, q3


def test_true_lesion_volumes_follow_the_drawn_distribution(demo):
    """Visible lesions cover the drawn two-piece log-normal evenly (stratified quantiles)."""
    truth = volumes_ml(demo, "truth", first_scans_only=True)
    visible = truth[truth > 0]
    q1, median, q3 = np.percentile(visible, [25, 50, 75])
    z = norm.ppf(0.75)
    assert median == pytest.approx(VOLUME_MEDIAN_ML, rel=0.15)
    assert q1 == pytest.approx(VOLUME_MEDIAN_ML * np.exp(-z * VOLUME_LOG_SD_BELOW), rel=0.2)
    assert q3 == pytest.approx(VOLUME_MEDIAN_ML * np.exp(z * VOLUME_LOG_SD_ABOVE), rel=0.2)


def test_about_ten_percent_empty_and_ten_percent_second_scans(demo):
    first = [case for case in demo.cases if case.scan_index == 0]
    truth = volumes_ml(demo, "truth", first_scans_only=True)
    assert len(first) == DEMO.n_patients
    assert np.count_nonzero(truth == 0) == DEMO.n_patients // DEMO.block
    second = [case for case in demo.cases if case.scan_index == 1]
    assert len(second) == DEMO.n_patients // DEMO.block
    assert all(case.id.endswith("_s1") for case in second)
