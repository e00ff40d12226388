"""Re-derive a study's numbers from its per-case table and list every disagreement.

A results file carries its per-case table so that a reader (and `bench leaderboard --check`)
can confirm the tables were not edited by hand. Re-derived: medians and n of every summary,
each bias test's n, median difference and signed-rank statistic, each precision test's n and
observed SDs, the image-level numbers and their tests' values, margins, differences, n and
SDs, Holm's adjustment of the stored raw p-values and every verdict. Not re-derived: bootstrap
intervals and p-values (they depend on the resampling, and recomputing all of them would make
a check as slow as the study) and the Wilcoxon p-value itself (scipy's small-sample method
changes between versions).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import astuple

import numpy as np
import pandas as pd

from bench.metric_names import METRIC_NAMES, MarginFamily
from bench.stats.config import HolmFamily
from bench.stats.image_level import FIGURES, case_values
from bench.stats.multiplicity import holm
from bench.stats.noninferiority import (
    complete_pairs,
    decide,
    oriented_difference,
    shifted_differences,
)
from bench.stats.per_case import PairValues
from bench.stats.rank_tests import signed_rank_statistic
from bench.stats.study import StudyStats, pair_image_level, pair_volumes, study_table
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
    problems += list(_verify_image_level_tests(study, values))
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


def _verify_image_level_tests(study: StudyStats, values: PairValues) -> Iterator[str]:
    """Each image-level test's values, margin, difference and precision n and SDs."""
    config = study.config
    margin_rule = config.margins[MarginFamily.UNIT_INTERVAL.value]
    for block in study.table3:
        if not block.image_level_tests:
            continue  # a file written before the image-level tests
        figures = tuple(t.figure for t in block.image_level_tests)
        if figures != FIGURES:
            yield f"image-level tests vs {block.rater} cover {figures}, expected {FIGURES}"
            continue
        rater_level, method_level = block.image_level
        cases = [
            case_values(pair_volumes(values, level.reference, level.test), level.threshold_ml)
            for level in (rater_level, method_level)
        ]
        for j, test in enumerate(block.image_level_tests):
            where = f"image-level test {test.figure} vs {block.rater}"
            a, m = getattr(rater_level, test.figure), getattr(method_level, test.figure)
            margin = margin_rule.resolve(a) if not math.isnan(a) else math.nan
            derived = (a, m, margin, m - a)
            stored = (test.rater_value, test.method_value, test.margin, test.difference)
            if not all(same(x, y) for x, y in zip(stored, derived, strict=True)):
                yield f"{where}: values, margin or difference do not match the image level"
            keep = complete_pairs(cases[0][j], cases[1][j])
            if test.precision.n != int(keep.sum()):
                yield f"{where}: precision n {test.precision.n} does not match the per-case table"
            elif keep.sum() > 1:
                sds = [float(np.std(c[j][keep], ddof=1)) for c in cases]
                if not (
                    same(test.precision.sd_rater, sds[0]) and same(test.precision.sd_method, sds[1])
                ):
                    yield f"{where}: SDs do not match the per-case table"


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
        image = [t for b in family for t in b.image_level_tests]
        image_precision = [t.precision for t in image]
        checks = [
            ("bias", bias, "p_value", "p_adjusted", "verdict"),
            ("precision", precision, "p_value", "p_adjusted", "verdict"),
            ("rank-sum", precision, "ranksum_p", "ranksum_p_adjusted", "ranksum_verdict"),
            ("image-level bias", image, "p_value", "p_adjusted", "verdict"),
            ("image-level precision", image_precision, "p_value", "p_adjusted", "verdict"),
            (
                "image-level rank-sum",
                image_precision,
                "ranksum_p",
                "ranksum_p_adjusted",
                "ranksum_verdict",
            ),
        ]
        for kind, tests, raw, adjusted, verdict in checks:
            expected = holm([getattr(t, raw) for t in tests])
            for test, p in zip(tests, expected, strict=True):
                label = getattr(test, "metric", None) or test.figure
                where = f"{kind} test {label} vs {test.rater}"
                if not same(getattr(test, adjusted), float(p)):
                    yield f"{where}: adjusted p does not follow from the raw p-values (Holm)"
                if getattr(test, verdict) is not decide(float(p), alpha):
                    yield (
                        f"{where}: verdict {getattr(test, verdict).value!r} does not follow "
                        f"from its adjusted p at alpha {alpha}"
                    )
