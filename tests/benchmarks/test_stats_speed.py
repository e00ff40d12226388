"""Speed of the whole statistics protocol against a straightforward implementation.

200 cases, every metric, reference A, two independent raters, R = 1000. The straightforward
version is what one writes first: `scipy.stats.bootstrap` per series, a Python loop over the
resamples for the paired SDs, scipy's tests one by one. Both run in this one file so the ratio
is measured on the same machine in the same run; the fast path must be at least 10x faster.

Run: `pytest -q -s tests/benchmarks/test_stats_speed.py` (prints the ratio; a plain `pytest`
skips tests/benchmarks) or `make bench-speed`.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench.metric_names import BY_NAME, METRIC_NAMES, Direction
from bench.stats import RaterRoles, StatsConfig, compute_study
from bench.stats.multiplicity import holm
from tests.stats.synthetic import make_per_case, noisy

log = logging.getLogger(__name__)
N_CASES, RESAMPLES = 200, 1000
ROLES = RaterRoles("A", ("B", "C"))
pytestmark = pytest.mark.filterwarnings("ignore:.*range zero:UserWarning")  # the naive shapiro
REQUIRED_SPEEDUP = 10.0


def straightforward_protocol(table: pd.DataFrame, method: str, config: StatsConfig) -> dict:
    """The same numbers as `compute_study`, written the obvious way."""
    rng = np.random.default_rng(config.seed)
    out: dict = {}

    def series(reference: str, test: str) -> pd.DataFrame:
        rows = table[(table["reference"] == reference) & (table["test"] == test)]
        return rows.set_index("case")

    def summary(values: pd.Series) -> tuple:
        x = values.dropna().to_numpy()
        ci = stats.bootstrap(
            (x,),
            np.median,
            n_resamples=config.resamples,
            confidence_level=config.ci_level,
            method="percentile",
            random_state=rng,
        ).confidence_interval
        return np.median(x), ci.low, ci.high, stats.shapiro(x)

    reference_method = series(ROLES.reference, method)
    for metric in METRIC_NAMES:
        out[("table2", metric)] = summary(reference_method[metric])
    bias_p, precision_p = [], []
    for rater in ROLES.independent:
        rater_rows, method_rows = series(rater, ROLES.reference), series(rater, method)
        for metric in METRIC_NAMES:
            out[(rater, metric, "A")] = summary(rater_rows[metric])
            out[(rater, metric, "M")] = summary(method_rows[metric])
            if metric not in config.tested_metrics:
                continue
            pair = pd.concat([rater_rows[metric], method_rows[metric]], axis=1).dropna()
            a, m = pair.iloc[:, 0].to_numpy(), pair.iloc[:, 1].to_numpy()
            d = m - a if BY_NAME[metric].direction is Direction.HIGHER_IS_BETTER else a - m
            margin = config.margin_for(metric).resolve(np.median(a))
            bias_p.append(stats.wilcoxon(d + margin, alternative="greater").pvalue)
            sd_a, sd_m = [], []
            for _ in range(config.resamples):
                index = rng.integers(0, len(a), len(a))
                sd_a.append(np.std(a[index], ddof=1))
                sd_m.append(np.std(m[index], ddof=1))
            difference = np.array(sd_m) - np.array(sd_a)
            out[(rater, metric, "sd_ci")] = np.percentile(difference, [5, 95])
            precision_p.append(stats.mannwhitneyu(sd_a, sd_m, alternative="greater").pvalue)
    out["bias_adjusted"] = holm(bias_p)
    out["precision_adjusted"] = holm(precision_p)
    return out


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return make_per_case(N_CASES, method_from_a=noisy(3.0), seed=1)


def _best_of(function, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def test_protocol_is_ten_times_faster_than_straightforward(table: pd.DataFrame) -> None:
    config = StatsConfig(resamples=RESAMPLES)
    fast = _best_of(lambda: compute_study(table, "M", ROLES, config), repeats=5)
    slow = _best_of(lambda: straightforward_protocol(table, "M", config), repeats=2)
    ratio = slow / fast
    message = (
        f"protocol: fast {fast * 1e3:.0f} ms, straightforward {slow * 1e3:.0f} ms, {ratio:.1f}x"
    )
    log.warning(message)
    print(message)
    assert ratio >= REQUIRED_SPEEDUP, message


def test_fast_and_straightforward_agree_on_medians(table: pd.DataFrame) -> None:
    config = StatsConfig(resamples=RESAMPLES)
    fast = compute_study(table, "M", ROLES, config)
    slow = straightforward_protocol(table, "M", config)
    for metric in METRIC_NAMES:
        assert fast.table2[metric].median == pytest.approx(slow[("table2", metric)][0], nan_ok=True)


def test_benchmark_fast_protocol(benchmark, table: pd.DataFrame) -> None:
    config = StatsConfig(resamples=RESAMPLES)
    benchmark(compute_study, table, "M", ROLES, config)


def test_benchmark_straightforward_protocol(benchmark, table: pd.DataFrame) -> None:
    config = StatsConfig(resamples=RESAMPLES)
    benchmark.pedantic(straightforward_protocol, (table, "M", config), rounds=2, iterations=1)
