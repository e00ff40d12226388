"""Re-derive a study's numbers from its per-case table and list every disagreement.

A results file carries its per-case table so that a reader (and `bench leaderboard --check`)
can confirm the tables were not edited by hand. Re-derived: medians and n of every summary,
each bias test's n, median difference and signed-rank statistic, each precision test's n and
observed SDs, the image-level numbers, Holm's adjustment of the stored raw p-values and every
verdict. Not re-derived: bootstrap intervals and p-values (they depend on the resampling, and
recomputing all of them would make a check as slow as the study) and the Wilcoxon p-value
itself (scipy's small-sample method changes between versions).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import astuple

import numpy as np
import pandas as pd

from bench.metric_names import METRIC_NAMES
from bench.stats.config import HolmFamily
from bench.stats.multiplicity import holm
from bench.stats.noninferiority import (
    complete_pairs,
    decide,
    oriented_difference,
    shifted_differences,
)
from bench.stats.per_case import PairValues
from bench.stats.rank_tests import signed_rank_statistic
from bench.stats.study import StudyStats, pair_image_level, study_table
from bench.stats.summary import observed_median

_RTOL, _ATOL = 1e-9, 1e-12


def same(stored: float, derived: float) -> bool:
    if math.isnan(stored) or math.isnan(derived):
        return math.isnan(stored) and math.isnan(derived)
    return math.isclose(stored, derived, rel_tol=_RTOL, abs_tol=_ATOL)


def verify_study(study: StudyStats, per_case: pd.DataFrame) -> list[str]:
    """Every mismatch between `study` and what its per-case table gives, one line each."""
    roles = study.roles
    table = study_table(per_case, study.method, roles)
    values = PairValues(table)
    problems = []
    expected_raters = tuple(block.rater for block in study.table3)
    if expected_raters != roles.independent:
        problems.append(f"Table 3 covers raters {expected_raters}, roles say {roles.independent}")
    if (study.table2.reference, study.table2.test) != (roles.reference, study.method):
        problems.append("Table 2 is not (reference rater, method)")
    for summary in study.summaries():
        if not values.has(summary.reference, summary.test):
            problems.append(f"no per-case rows for ({summary.reference}, {summary.test})")
            continue
        block = values.metrics(summary.reference, summary.test)
        for metric in summary.metrics:
            column = block[:, METRIC_NAMES.index(metric.metric)]
            where = f"({summary.reference}, {summary.test}) {metric.metric}"
            n = int((~np.isnan(column)).sum())
            if metric.n != n:
                problems.append(f"{where}: n {metric.n} but the per-case table gives {n}")
            median = observed_median(column)
            if not same(metric.median, median):
                problems.append(
                    f"{where}: median {metric.median!r} does not match the per-case table "
                    f"({median!r})"
                )
    problems += list(_verify_tests(study, values))
    problems += list(_verify_adjustment(study))
    return problems


def _verify_tests(study: StudyStats, values: PairValues) -> Iterator[str]:
    config, reference = study.config, study.roles.reference
    for block in study.table3:
        rater = block.rater
        rater_values = values.metrics(rater, reference)
        method_values = values.metrics(rater, study.method)
        for test in block.bias:
            a = rater_values[:, METRIC_NAMES.index(test.metric)]
            m = method_values[:, METRIC_NAMES.index(test.metric)]
            keep = complete_pairs(a, m)
            d = oriented_difference(test.metric, a[keep], m[keep])
            margin = config.margin_for(test.metric).resolve(observed_median(a[keep]))
            where = f"bias test {test.metric} vs {rater}"
            if test.n != int(keep.sum()):
                yield f"{where}: n {test.n} but the per-case table gives {int(keep.sum())}"
            if not same(test.margin, margin):
                yield f"{where}: margin {test.margin!r} but the configuration gives {margin!r}"
            if not same(test.median_difference, observed_median(d)):
                yield f"{where}: median difference does not match the per-case table"
            statistic = signed_rank_statistic(shifted_differences(d, margin))
            if d.size and not same(test.statistic, statistic):
                yield f"{where}: statistic {test.statistic!r} does not match the per-case table"
        for test in block.precision:
            a = rater_values[:, METRIC_NAMES.index(test.metric)]
            m = method_values[:, METRIC_NAMES.index(test.metric)]
            keep = complete_pairs(a, m)
            where = f"precision test {test.metric} vs {rater}"
            if test.n != int(keep.sum()):
                yield f"{where}: n {test.n} but the per-case table gives {int(keep.sum())}"
            if keep.sum() > 1:
                sds = (float(np.std(a[keep], ddof=1)), float(np.std(m[keep], ddof=1)))
                if not (same(test.sd_rater, sds[0]) and same(test.sd_method, sds[1])):
                    yield f"{where}: SDs do not match the per-case table"
        for stored in block.image_level:
            derived = pair_image_level(
                values, stored.reference, stored.test, config.image_level_threshold_ml
            )
            if not all(
                same(float(a), float(b))
                for a, b in zip(astuple(stored)[2:], astuple(derived)[2:], strict=True)
            ):
                yield (
                    f"image level ({stored.reference}, {stored.test}) does not match the "
                    "per-case table"
                )


def _verify_adjustment(study: StudyStats) -> Iterator[str]:
    """Holm's adjustment of the stored raw p-values, and verdicts at alpha."""
    alpha = study.config.alpha
    blocks = list(study.table3)
    if study.config.holm_family is HolmFamily.PER_RATER:
        families = [[b] for b in blocks]
    else:
        families = [blocks]
    for family in families:
        bias = [t for b in family for t in b.bias]
        precision = [t for b in family for t in b.precision]
        checks = [
            ("bias", bias, "p_value", "p_adjusted", "verdict"),
            ("precision", precision, "p_value", "p_adjusted", "verdict"),
            ("rank-sum", precision, "ranksum_p", "ranksum_p_adjusted", "ranksum_verdict"),
        ]
        for kind, tests, raw, adjusted, verdict in checks:
            expected = holm([getattr(t, raw) for t in tests])
            for test, p in zip(tests, expected, strict=True):
                where = f"{kind} test {test.metric} vs {test.rater}"
                if not same(getattr(test, adjusted), float(p)):
                    yield f"{where}: adjusted p does not follow from the raw p-values (Holm)"
                if getattr(test, verdict) is not decide(float(p), alpha):
                    yield (
                        f"{where}: verdict {getattr(test, verdict).value!r} does not follow "
                        f"from its adjusted p at alpha {alpha}"
                    )
