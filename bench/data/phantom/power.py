"""How often the protocol shows non-inferiority for a method at parity, by cohort size.

The phantom's cohort size is a statistical choice as much as a cost: with too few patients no
method can pass the bias tests (one-sided Wilcoxon per metric, Holm over the family), however
good it is. A method at parity with the reference rater is simulated by that rater's second,
independent reading of every scan (`build_phantom(..., rereadings=...)`): the same style, its
own noise. Cohorts of n patients are drawn with replacement from a pool of first scans, each
gets the protocol's bias tests and Holm families (`bench.stats`, as `compute_study` runs them;
the bootstrap is not needed), and the power is the share of cohorts in which every required
bias test (SDT5 and Dice against every independent rater, by default) is shown.

    python -m bench.data.phantom.power --out /tmp/power --patients 200 --sizes 40,120,200
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.metric_names import METRIC_NAMES
from bench.stats import RaterRoles, StatsConfig
from bench.stats.config import HolmFamily
from bench.stats.multiplicity import holm
from bench.stats.noninferiority import Verdict, bias_test, decide
from bench.stats.per_case import PairValues
from bench.stats.study import study_table

REQUIRED_METRICS = ("SDT5", "Dice")


@dataclass(frozen=True)
class PowerPoint:
    patients: int
    simulations: int
    shown: int  # cohorts in which every required test was non-inferior

    @property
    def power(self) -> float:
        return self.shown / self.simulations

    @property
    def standard_error(self) -> float:
        return math.sqrt(self.power * (1 - self.power) / self.simulations)


def bias_power(
    per_case: pd.DataFrame,
    method: str,
    roles: RaterRoles,
    sizes: Sequence[int],
    simulations: int = 1000,
    required: Sequence[str] = REQUIRED_METRICS,
    config: StatsConfig | None = None,
    seed: int = 0,
) -> list[PowerPoint]:
    """Power of the bias tests of `required` metrics (all independent raters) at each size.

    `per_case` is the evaluator's table for one case per patient (the pool). Each drawn
    cohort gets the protocol's bias tests and Holm families (`cohort_bias_verdicts`).
    """
    config = config or StatsConfig()
    values = PairValues(study_table(per_case, method, roles))
    pairs = {
        rater: (values.metrics(rater, roles.reference), values.metrics(rater, method))
        for rater in roles.independent
    }
    points = []
    for n in sizes:
        rng = np.random.default_rng([seed, n])  # each size's cohorts whatever the other sizes
        shown = 0
        for _ in range(simulations):
            drawn = rng.integers(len(values.cases), size=n)
            cohort = {r: (a[drawn], m[drawn]) for r, (a, m) in pairs.items()}
            verdicts = cohort_bias_verdicts(cohort, config)
            shown += all(
                verdicts[(rater, metric)] is Verdict.NON_INFERIOR
                for rater in roles.independent
                for metric in required
            )
        points.append(PowerPoint(n, simulations, shown))
    return points


def cohort_bias_verdicts(
    pairs: Mapping[str, tuple[np.ndarray, np.ndarray]], config: StatsConfig
) -> dict[tuple[str, str], Verdict]:
    """(rater, metric) -> verdict of the bias test, Holm-adjusted as `compute_study` does;
    `pairs` maps each independent rater E to (metric(E, A), metric(E, M)), each an
    (n_cases, n_metrics) array in METRIC_NAMES order."""
    tests = {
        (rater, metric): bias_test(
            rater,
            metric,
            a[:, METRIC_NAMES.index(metric)],
            m[:, METRIC_NAMES.index(metric)],
            config.margin_for(metric),
        ).p_value
        for rater, (a, m) in pairs.items()
        for metric in config.tested_metrics
    }
    if config.holm_family is HolmFamily.PER_RATER:
        families = [[key for key in tests if key[0] == rater] for rater in pairs]
    else:
        families = [list(tests)]
    verdicts = {}
    for family in families:
        adjusted = holm([tests[key] for key in family])
        verdicts.update(
            {key: decide(p, config.alpha) for key, p in zip(family, adjusted, strict=True)}
        )
    return verdicts


def reread_pool(out: Path, profile: str, patients: int, seed: int, rater: str) -> pd.DataFrame:
    """Build the phantom with `rater`'s rereading of every scan and score the first scans:
    the per-case table of a method (`<rater>_reread`) at parity with `rater`."""
    from bench.data.phantom.build import build_phantom
    from bench.data.phantom.simulate import REREAD_SUFFIX
    from bench.evaluate import score_study

    method = f"{rater}{REREAD_SUFFIX}"
    dataset = build_phantom(
        out / "dataset", profile, n_patients=patients, seed=seed, rereadings={rater: out / method}
    )
    per_case = score_study(dataset, {method: out / method}, cache_dir=out / "scores")
    first_scans = {case.id for case in dataset.cases if case.scan_index == 0}
    return per_case[per_case["case"].isin(first_scans)].reset_index(drop=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.data.phantom.power", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="work folder (phantom, scores)")
    parser.add_argument("--profile", default="demo", help="phantom profile (default demo)")
    parser.add_argument("--patients", type=int, default=200, help="pool size (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="phantom seed (default 0)")
    parser.add_argument("--rater", default="A", help="the reference rater, reread (default A)")
    parser.add_argument(
        "--sizes", default="40,60,80,100,120,140,160,200", help="cohort sizes, comma-separated"
    )
    parser.add_argument("--simulations", type=int, default=1000, help="cohorts per size")
    args = parser.parse_args(argv)
    per_case = reread_pool(args.out, args.profile, args.patients, args.seed, args.rater)
    per_case.to_csv(args.out / "per_case.csv", index=False)
    method = f"{args.rater}_reread"
    roles = RaterRoles.from_table(per_case, method, reference=args.rater)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"pool: {per_case['case'].nunique()} first scans; method {method} at parity")
    print("patients  power  (se)   bias non-inferiority of SDT5 and Dice vs every rater, Holm")
    for point in bias_power(per_case, method, roles, sizes, args.simulations):
        print(f"{point.patients:8d}  {point.power:.3f} ({point.standard_error:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
