"""How long the phantom takes to generate, and whether the paper profile is calibrated too.

Run with `pytest tests/benchmarks/test_phantom_speed.py` (the default test run skips this
folder). The demo build (120 patients) should take about a minute on a 2-core machine; the
paper profile is reported per case and checked on a sample of patients against the study's
expert agreement.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from bench.data.phantom import build_phantom
from bench.data.phantom.anatomy import load_template
from bench.data.phantom.profiles import PROFILES
from tests.data.test_phantom_calibration import TARGETS, agreement_medians

DEMO_BUDGET_S = 120.0
# The paper sample is small (its medians are noisier than the demo's).
PAPER_SAMPLE_PATIENTS = 12
PAPER_TOLERANCE = 0.12


def test_demo_build_time(benchmark, tmp_path):
    """Cold build of the default dataset, template loading included."""

    def build():
        load_template.cache_clear()
        return build_phantom(tmp_path / "demo", "demo", progress=False)

    dataset = benchmark.pedantic(build, rounds=1, iterations=1)
    demo = PROFILES["demo"]
    assert len(dataset.cases) == demo.n_patients + demo.n_patients // demo.block
    assert benchmark.stats.stats.max < DEMO_BUDGET_S


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_paper_profile_time_per_case_and_calibration(tmp_path):
    load_template(1)  # loaded once per process; reported apart from the per-case time
    started = time.perf_counter()
    dataset = build_phantom(
        tmp_path / "paper", "paper", n_patients=PAPER_SAMPLE_PATIENTS, progress=False
    )
    per_case = (time.perf_counter() - started) / len(dataset.cases)
    print(f"paper profile: {per_case:.1f} s per case over {len(dataset.cases)} cases")
    medians = agreement_medians(dataset)
    print({f"{r},{t}": {k: round(v, 3) for k, v in m.items()} for (r, t), m in medians.items()})
    for pair, targets in TARGETS.items():
        for metric, target in targets.items():
            measured = medians[pair][metric]
            assert abs(measured - target) <= PAPER_TOLERANCE, (pair, metric, measured)
    assert np.isfinite(per_case)
