"""The whole protocol for one method: Table 2, Table 3, image level and the truth summary.

Every series of the study (all metrics of all rater pairs) is resampled with one shared index
matrix: medians and SDs for all of them come out of two vectorised passes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from bench.errors import InputError
from bench.evaluate.image_level import ImageLevel, image_level
from bench.metric_names import METRIC_NAMES
from bench.stats.bootstrap import CaseBootstrap, percentile_interval
from bench.stats.config import HolmFamily, StatsConfig
from bench.stats.image_level import (
    ImageLevelTest,
    PairVolumes,
    compare_image_level,
    with_adjusted_image_level,
)
from bench.stats.multiplicity import holm
from bench.stats.noninferiority import (
    BiasTest,
    PrecisionTest,
    bias_test,
    complete_pairs,
    precision_test,
    with_adjusted_bias,
    with_adjusted_precision,
)
from bench.stats.per_case import PairValues, validate_per_case
from bench.stats.roles import RaterRoles
from bench.stats.summary import PairSummary, summarize_pair

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RaterComparison:
    """Table 3 for one independent rater E: E vs A beside E vs the method, and the tests."""

    rater: str
    rater_vs_reference: PairSummary  # metric(E, A)
    rater_vs_method: PairSummary  # metric(E, M)
    bias: tuple[BiasTest, ...]
    precision: tuple[PrecisionTest, ...]
    image_level: tuple[ImageLevel, ...]  # (E, A) then (E, M)
    # CIs and tests of the image-level figures; absent from results files written before them.
    image_level_tests: tuple[ImageLevelTest, ...] = field(default=(), metadata={"optional": True})


@dataclass(frozen=True)
class StudyStats:
    method: str
    roles: RaterRoles
    config: StatsConfig
    n_cases: int  # the shared case axis the bootstrap resamples
    table2: PairSummary  # (reference rater, method)
    table3: tuple[RaterComparison, ...]
    truth: tuple[PairSummary, ...]  # (truth, X) for every rater and the method, if any

    def comparison(self, rater: str) -> RaterComparison:
        for block in self.table3:
            if block.rater == rater:
                return block
        raise KeyError(rater)

    def summaries(self) -> list[PairSummary]:
        """Every PairSummary in the study (what a results check re-derives)."""
        pairs = [self.table2]
        for block in self.table3:
            pairs += [block.rater_vs_reference, block.rater_vs_method]
        return pairs + list(self.truth)


def study_table(per_case: pd.DataFrame, method: str, roles: RaterRoles) -> pd.DataFrame:
    """The rows of the per-case table that the study uses, validated; InputError if any
    pair the protocol needs is missing."""
    table = validate_per_case(per_case)
    pair_index = pd.MultiIndex.from_arrays([table["reference"], table["test"]])
    present = set(pair_index.unique())
    missing = [f"({r}, {t})" for r, t in roles.required_pairs(method) if (r, t) not in present]
    if missing:
        raise InputError(
            f"the per-case table has no rows for (reference, test) "
            f"{', '.join(missing)} needed by the statistics of {method}"
        )
    wanted = list(roles.required_pairs(method))
    for pair in roles.truth_pairs(method):
        if pair in present:
            wanted.append(pair)
        else:
            log.warning("no rows for (%s, %s): left out of the truth summary", *pair)
    keep = pair_index.isin(wanted)
    return table.loc[keep].sort_values(["reference", "test", "case"]).reset_index(drop=True)


def compute_study(
    per_case: pd.DataFrame,
    method: str,
    roles: RaterRoles,
    config: StatsConfig | None = None,
) -> StudyStats:
    """Table 2, Table 3 (with tests), image level and the truth summary for `method`."""
    config = config or StatsConfig()
    table = study_table(per_case, method, roles)
    values = PairValues(table)
    boot = CaseBootstrap(len(values.cases), config.resamples, config.seed)

    pairs = [(roles.reference, method)]
    for rater in roles.independent:
        pairs += [(rater, roles.reference), (rater, method)]
    pairs += [p for p in roles.truth_pairs(method) if values.has(*p)]
    summaries = _summaries(values, pairs, boot, config.ci_level)

    comparisons = []
    for rater in roles.independent:
        rater_values = values.metrics(rater, roles.reference)
        method_values = values.metrics(rater, method)
        bias, precision = _tests(rater, rater_values, method_values, boot, config)
        levels = tuple(
            pair_image_level(values, rater, test, config.image_level_threshold_ml)
            for test in (roles.reference, method)
        )
        comparisons.append(
            RaterComparison(
                rater=rater,
                rater_vs_reference=summaries[(rater, roles.reference)],
                rater_vs_method=summaries[(rater, method)],
                bias=bias,
                precision=precision,
                image_level=levels,
                image_level_tests=compare_image_level(
                    rater,
                    (levels[0], pair_volumes(values, rater, roles.reference)),
                    (levels[1], pair_volumes(values, rater, method)),
                    boot,
                    config,
                ),
            )
        )
    return _adjust(
        StudyStats(
            method=method,
            roles=roles,
            config=config,
            n_cases=len(values.cases),
            table2=summaries[(roles.reference, method)],
            table3=tuple(comparisons),
            truth=tuple(summaries[p] for p in pairs if p[0] == roles.truth),
        )
    )


def pair_image_level(
    values: PairValues, reference: str, test: str, threshold_ml: float
) -> ImageLevel:
    """Image level of one (reference, test) pair from its volumes, recalls and reasons."""
    block = values.metrics(reference, test)
    return image_level(
        reference,
        test,
        block[:, METRIC_NAMES.index("V_ref")],
        block[:, METRIC_NAMES.index("V_test")],
        block[:, METRIC_NAMES.index("Recall")],
        values.reasons(reference, test),
        threshold_ml,
    )


def pair_volumes(values: PairValues, reference: str, test: str) -> PairVolumes:
    block = values.metrics(reference, test)
    return PairVolumes(
        block[:, METRIC_NAMES.index("V_ref")], block[:, METRIC_NAMES.index("V_test")]
    )


def _summaries(
    values: PairValues, pairs: list[tuple[str, str]], boot: CaseBootstrap, level: float
) -> dict[tuple[str, str], PairSummary]:
    """Median and CI of every metric of every pair, from one vectorised bootstrap."""
    blocks = [values.metrics(*pair) for pair in pairs]  # each (n, n_metrics)
    series = np.concatenate([block.T for block in blocks])  # (pairs * n_metrics, n)
    low, high = percentile_interval(boot.medians(series), level)
    n_metrics = len(METRIC_NAMES)
    out = {}
    for i, pair in enumerate(pairs):
        rows = slice(i * n_metrics, (i + 1) * n_metrics)
        out[pair] = summarize_pair(
            *pair, values.rows_present(*pair), blocks[i], low[rows], high[rows]
        )
    return out


def _tests(
    rater: str,
    rater_values: np.ndarray,
    method_values: np.ndarray,
    boot: CaseBootstrap,
    config: StatsConfig,
) -> tuple[tuple[BiasTest, ...], tuple[PrecisionTest, ...]]:
    """Unadjusted bias and precision tests of every tested metric against rater E."""
    columns = [METRIC_NAMES.index(m) for m in config.tested_metrics]
    a, m = rater_values[:, columns].T, method_values[:, columns].T  # (k, n)
    keep = complete_pairs(a, m)
    # Bootstrapped SDs over complete pairs only, both series on the same resamples.
    sds = boot.sds(np.concatenate([np.where(keep, a, np.nan), np.where(keep, m, np.nan)]))
    k = len(columns)
    bias, precision = [], []
    for j, metric in enumerate(config.tested_metrics):
        bias.append(bias_test(rater, metric, a[j], m[j], config.margin_for(metric)))
        precision.append(
            precision_test(
                rater,
                metric,
                a[j],
                m[j],
                sds[j],
                sds[k + j],
                config.precision_margin,
                config.ci_level,
            )
        )
    return tuple(bias), tuple(precision)


def _adjust(study: StudyStats) -> StudyStats:
    """Holm over each family of tests, then verdicts at alpha.

    The image-level tests are families of their own (bias, precision), so the metrics'
    adjusted p-values do not depend on them."""
    alpha = study.config.alpha
    blocks = list(study.table3)
    if study.config.holm_family is HolmFamily.PER_RATER:
        families = [[i] for i in range(len(blocks))]
    else:
        families = [list(range(len(blocks)))]
    for family in families:
        bias = [t for i in family for t in blocks[i].bias]
        precision = [t for i in family for t in blocks[i].precision]
        image = [t for i in family for t in blocks[i].image_level_tests]
        image_precision = [t.precision for t in image]
        bias_adjusted = iter(holm([t.p_value for t in bias]))
        boot_adjusted = iter(holm([t.p_value for t in precision]))
        ranksum_adjusted = iter(holm([t.ranksum_p for t in precision]))
        image_adjusted = iter(holm([t.p_value for t in image]))
        image_boot_adjusted = iter(holm([t.p_value for t in image_precision]))
        image_ranksum_adjusted = iter(holm([t.ranksum_p for t in image_precision]))
        for i in family:
            block = blocks[i]
            blocks[i] = replace(
                block,
                bias=tuple(with_adjusted_bias(t, next(bias_adjusted), alpha) for t in block.bias),
                precision=tuple(
                    with_adjusted_precision(t, next(boot_adjusted), next(ranksum_adjusted), alpha)
                    for t in block.precision
                ),
                image_level_tests=tuple(
                    with_adjusted_image_level(
                        t,
                        next(image_adjusted),
                        next(image_boot_adjusted),
                        next(image_ranksum_adjusted),
                        alpha,
                    )
                    for t in block.image_level_tests
                ),
            )
    return replace(study, table3=tuple(blocks))
