"""Calibration of the default (demo) phantom against the study's expert agreement.

The paper reports, as medians over cases ("(B, A)" = reference B, test A):
  (B, A): SDT5 0.67, Dice 0.46, VS 0.77, Precision 0.61, Recall 0.41
  (C, A): SDT5 0.64, Dice 0.38, VS 0.60, Precision 0.27, Recall 0.69
and rater A's lesion volumes have a median of ~12 ml (IQR ~5-30 ml). The metrics are computed
here independently of the harness's evaluator: overlap with numpy, surface Dice with DeepMind's
`surface-distance` (the implementation the study's evaluator used). Pairs where either mask is
empty are undefined (NaN in the evaluator) and left out of the medians.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.data.phantom import build_phantom
from bench.io import read_image

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

TARGETS = {
    ("B", "A"): {"SDT5": 0.67, "Dice": 0.46, "VS": 0.77, "Precision": 0.61, "Recall": 0.41},
    ("C", "A"): {"SDT5": 0.64, "Dice": 0.38, "VS": 0.60, "Precision": 0.27, "Recall": 0.69},
}
TOLERANCE = 0.08


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


def test_rater_a_volumes_look_like_the_cohort(demo):
    labelled = volumes_ml(demo, "A")
    labelled = labelled[labelled > 0]
    q1, median, q3 = np.percentile(labelled, [25, 50, 75])
    assert 8.0 <= median <= 17.0, median
    assert 2.5 <= q1 <= 9.0, q1
    assert 18.0 <= q3 <= 45.0, q3


def test_true_lesion_volumes_are_log_normal_around_12_ml(demo):
    truth = volumes_ml(demo, "truth", first_scans_only=True)
    visible = truth[truth > 0]
    q1, median, q3 = np.percentile(visible, [25, 50, 75])
    assert 9.0 <= median <= 16.0, median
    assert 3.0 <= q1 <= 7.5, q1
    assert 20.0 <= q3 <= 40.0, q3
    logs = np.log(visible)
    skew = float(np.mean((logs - logs.mean()) ** 3) / logs.std() ** 3)
    assert abs(skew) < 1.0, "roughly symmetric in log volume"


def test_about_ten_percent_empty_and_ten_percent_second_scans(demo):
    first = [case for case in demo.cases if case.scan_index == 0]
    truth = volumes_ml(demo, "truth", first_scans_only=True)
    assert len(first) == 40
    assert np.count_nonzero(truth == 0) == 4
    second = [case for case in demo.cases if case.scan_index == 1]
    assert len(second) == 4
    assert all(case.id.endswith("_s1") for case in second)
