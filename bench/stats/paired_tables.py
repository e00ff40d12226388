"""Paired comparisons and the study's claims as tables of strings: one layout for the terminal
(`bench compare`) and the leaderboard's markdown, numbers formatted as in `bench.stats.tables`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from bench.stats.claims import ClaimResult, ClaimVerdict
from bench.stats.paired import CompareConfig, PairedComparison
from bench.stats.tables import MISSING, Table, fmt_interval, fmt_number, fmt_p

NO_RESULTS = "no results file for this dataset and profile"


def ci_label(config: CompareConfig) -> str:
    return f"{100 * config.ci_level:g}% CI"


def fmt_difference(comparison: PairedComparison) -> str:
    """`+0.052 [0.011, 0.090]`: the median paired difference and its bootstrap CI."""
    value, metric = comparison.median_difference, comparison.metric
    if math.isnan(value):
        return MISSING
    sign = "+" if value > 0 else ""
    interval = fmt_interval(comparison.ci_low, comparison.ci_high, metric)
    return f"{sign}{fmt_number(value, metric)} {interval}"


def fmt_cases(comparison: PairedComparison) -> str:
    """Cases tested of the cases both methods were scored on."""
    return f"{comparison.n} of {comparison.shared}"


def fmt_p_pair(comparison: PairedComparison) -> str:
    return f"{fmt_p(comparison.p_value)} ({fmt_p(comparison.p_adjusted)})"


def comparison_table(comparisons: Sequence[PairedComparison], config: CompareConfig) -> Table:
    """One row per (pair, metric), d = first - second."""
    headers = [
        "First - second",
        "Metric",
        "Cases used",
        f"Median difference [{ci_label(config)}]",
        "W+",
        "p (Holm)",
        f"At alpha {config.alpha:g}",
    ]
    rows = []
    for c in comparisons:
        favoured = c.favours()
        if math.isnan(c.p_adjusted):
            verdict = "not tested: no case where both are defined"
        elif c.significant(config.alpha) and favoured is not None:
            verdict = f"{favoured} better"
        else:
            verdict = "no difference shown"
        rows.append(
            [
                f"{c.first} - {c.second}",
                c.metric,
                fmt_cases(c),
                fmt_difference(c),
                MISSING if math.isnan(c.w_plus) else f"{c.w_plus:g}",
                fmt_p_pair(c),
                verdict,
            ]
        )
    return headers, rows


def missing_text(missing: Sequence[str]) -> str:
    names = ", ".join(f"`{name}`" for name in missing)
    verb = "has" if len(missing) == 1 else "have"
    return f"{ClaimVerdict.NOT_TESTED.value}: {names} {verb} {NO_RESULTS}"


def claims_table(results: Sequence[ClaimResult], config: CompareConfig) -> Table:
    """One row per tested (claim, metric); one row per claim that could not be tested."""
    headers = [
        "Claim",
        "Paper: better - worse",
        "Metric",
        "Cases used",
        f"Median difference [{ci_label(config)}]",
        "p (Holm)",
        "Paper's direction",
    ]
    rows = []
    for result in results:
        claim = result.claim
        lead = [claim.name, f"`{claim.better}` - `{claim.worse}`"]
        if result.missing:
            rows.append([*lead, "-", "-", "-", "-", missing_text(result.missing)])
            continue
        for c in result.comparisons:
            verdict = result.verdict(c, config.alpha)
            text = verdict.value
            if verdict is ClaimVerdict.NOT_TESTED:
                text += ": no case where both are defined"
            rows.append([*lead, c.metric, fmt_cases(c), fmt_difference(c), fmt_p_pair(c), text])
    return headers, rows
