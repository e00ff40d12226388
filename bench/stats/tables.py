"""The study as tables of strings: one layout for the terminal (`bench stats`) and the
leaderboard's markdown, so the two never disagree on what a number means.

Each function returns (headers, rows) for `tabulate`; numbers are formatted here, once.
"""

from __future__ import annotations

import math

from bench.evaluate.image_level import ImageLevel
from bench.metric_names import BY_NAME, METRIC_NAMES
from bench.stats.image_level import ImageLevelTest
from bench.stats.noninferiority import BiasTest, PrecisionTest, Verdict
from bench.stats.study import RaterComparison, StudyStats
from bench.stats.summary import PairSummary, Summary

Table = tuple[list[str], list[list[str]]]
MISSING = "n/a"


def unit_label(metric: str) -> str:
    unit = BY_NAME[metric].unit
    return f"{metric} [{unit}]" if unit else metric


def fmt_number(value: float, metric: str | None = None) -> str:
    """3 decimals for [0, 1] metrics, 2 for ml and mm."""
    if value is None or math.isnan(value):
        return MISSING
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    digits = 2 if metric and BY_NAME[metric].unit else 3
    return f"{value:.{digits}f}"


def fmt_summary(summary: Summary) -> str:
    """`median ± half-width` of the 90% CI, as the paper prints it."""
    if math.isnan(summary.median):
        return MISSING
    return (
        f"{fmt_number(summary.median, summary.metric)} ± "
        f"{fmt_number(summary.half_width, summary.metric)}"
    )


def fmt_interval(low: float, high: float, metric: str | None = None) -> str:
    return f"[{fmt_number(low, metric)}, {fmt_number(high, metric)}]"


def fmt_p(p: float) -> str:
    if math.isnan(p):
        return MISSING
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def fmt_share(value: float) -> str:
    return MISSING if math.isnan(value) else f"{100 * value:.0f}%"


def table2(study: StudyStats) -> Table:
    """Every metric of (reference rater, method): median ± half-width, the CI, normality."""
    headers = ["Metric", "n", "Median ± CI/2", f"{_level(study)} CI", "Shapiro-Wilk p"]
    rows = [
        [
            unit_label(s.metric),
            str(s.n),
            fmt_summary(s),
            fmt_interval(s.ci_low, s.ci_high, s.metric),
            fmt_p(s.shapiro_p),
        ]
        for s in study.table2.metrics
    ]
    return headers, rows


def table3_bias(study: StudyStats, block: RaterComparison) -> Table:
    """metric(E, A) beside metric(E, M), then the bias test where the metric is tested."""
    rater, reference, method = block.rater, study.roles.reference, study.method
    headers = [
        "Metric",
        f"{rater} vs {reference}",
        f"{rater} vs {method}",
        "n",
        "Margin",
        "Median d",
        "W+",
        "p",
        "p (Holm)",
        "Bias",
    ]
    tests = {t.metric: t for t in block.bias}
    rows = []
    for metric in METRIC_NAMES:
        row = [
            unit_label(metric),
            fmt_summary(block.rater_vs_reference[metric]),
            fmt_summary(block.rater_vs_method[metric]),
        ]
        test = tests.get(metric)
        row += _bias_cells(test) if test else [""] * 7
        rows.append(row)
    return headers, rows


def _bias_cells(test: BiasTest) -> list[str]:
    return [
        str(test.n),
        fmt_number(test.margin, test.metric),
        fmt_number(test.median_difference, test.metric),
        MISSING if math.isnan(test.statistic) else f"{test.statistic:g}",
        fmt_p(test.p_value),
        fmt_p(test.p_adjusted),
        test.verdict.value,
    ]


def table3_precision(study: StudyStats, block: RaterComparison) -> Table:
    """Bootstrapped SDs: the CI verdict (used) and the paper's rank-sum test (reported)."""
    rater, reference, method = block.rater, study.roles.reference, study.method
    headers = [
        "Metric",
        "n",
        f"SD {rater} vs {reference}",
        f"SD {rater} vs {method}",
        f"SD difference {_level(study)} CI",
        "Margin",
        "p boot (Holm)",
        "Precision",
        "Rank-sum p (Holm)",
        "Paper's test",
    ]
    rows = [_precision_row(t) for t in block.precision]
    return headers, rows


def _precision_row(test: PrecisionTest) -> list[str]:
    m = test.metric
    return [
        unit_label(m),
        str(test.n),
        fmt_number(test.sd_rater, m),
        fmt_number(test.sd_method, m),
        f"{fmt_number(test.sd_difference, m)} {fmt_interval(test.ci_low, test.ci_high, m)}",
        fmt_number(test.margin, m),
        fmt_p(test.p_adjusted),
        test.verdict.value,
        fmt_p(test.ranksum_p_adjusted),
        test.ranksum_verdict.value,
    ]


def image_level_table(levels: tuple[ImageLevel, ...] | list[ImageLevel]) -> Table:
    headers = [
        "Reference",
        "Test",
        "n",
        "Positives",
        "Sensitivity",
        "Specificity",
        "AUC",
        "Accuracy",
        "Detection rate",
    ]
    rows = [
        [
            lv.reference,
            lv.test,
            str(lv.n),
            str(lv.positives),
            *(
                fmt_number(v)
                for v in (lv.sensitivity, lv.specificity, lv.auc, lv.accuracy, lv.detection_rate)
            ),
        ]
        for lv in levels
    ]
    return headers, rows


def image_level_tests_table(study: StudyStats, block: RaterComparison) -> Table:
    """Table 3's image level: both figures with CIs, then the bias and precision tests."""
    rater, reference, method = block.rater, study.roles.reference, study.method
    headers = [
        "Figure",
        f"{rater} vs {reference}",
        f"{rater} vs {method}",
        "Margin",
        f"Difference {_level(study)} CI",
        "p (Holm)",
        "Bias",
        "SD difference",
        "p boot (Holm)",
        "Precision",
    ]
    return headers, [_image_level_test_row(t) for t in block.image_level_tests]


def _image_level_test_row(test: ImageLevelTest) -> list[str]:
    precision = test.precision
    return [
        _FIGURE_LABELS[test.figure],
        fmt_estimate(test.rater_value, test.rater_ci_low, test.rater_ci_high),
        fmt_estimate(test.method_value, test.method_ci_low, test.method_ci_high),
        fmt_number(test.margin),
        _with_interval(test.difference, test.difference_ci_low, test.difference_ci_high),
        fmt_p(test.p_adjusted),
        test.verdict.value,
        _with_interval(precision.sd_difference, precision.ci_low, precision.ci_high),
        fmt_p(precision.p_adjusted),
        precision.verdict.value,
    ]


def _with_interval(value: float, low: float, high: float) -> str:
    if math.isnan(value):
        return MISSING
    return f"{fmt_number(value)} {fmt_interval(low, high)}"


_FIGURE_LABELS = {"sensitivity": "Sensitivity", "specificity": "Specificity", "auc": "AUC"}


def fmt_estimate(value: float, low: float, high: float) -> str:
    """`value ± half-width` of its CI, as `fmt_summary` prints a median."""
    if math.isnan(value):
        return MISSING
    return f"{fmt_number(value)} ± {fmt_number((high - low) / 2)}"


def truth_table(study: StudyStats) -> Table:
    """Every rater and the method against the truth: one column per test."""
    pairs: list[PairSummary] = list(study.truth)
    headers = ["Metric", *[f"{p.test} vs {p.reference}" for p in pairs]]
    rows = [[unit_label(m), *[fmt_summary(p[m]) for p in pairs]] for m in METRIC_NAMES]
    return headers, rows


def verdict_counts(block: RaterComparison) -> tuple[int, int, int, int]:
    """(bias passed, bias tested, precision passed, precision tested) against one rater."""
    bias = [t for t in block.bias if t.verdict is not Verdict.NOT_TESTED]
    precision = [t for t in block.precision if t.verdict is not Verdict.NOT_TESTED]
    return (
        sum(t.verdict is Verdict.NON_INFERIOR for t in bias),
        len(bias),
        sum(t.verdict is Verdict.NON_INFERIOR for t in precision),
        len(precision),
    )


def _level(study: StudyStats) -> str:
    return f"{100 * study.config.ci_level:g}%"


def study_report(study: StudyStats, method: str, reference: str) -> str:
    """Table 2, Table 3 (bias, precision, image level) and the truth table, as terminal text."""
    from tabulate import tabulate

    def show(title: str, table: Table) -> str:
        headers, rows = table
        return f"\n{title}\n{tabulate(rows, headers=headers, disable_numparse=True)}"

    parts = [show(f"Table 2: {method} against reference rater {reference}", table2(study))]
    for block in study.table3:
        parts.append(
            show(f"Table 3: bias, {method} against rater {block.rater}", table3_bias(study, block))
        )
        parts.append(
            show(
                f"Table 3: precision, {method} against rater {block.rater}",
                table3_precision(study, block),
            )
        )
        parts.append(
            show(
                f"Image level at {study.config.image_level_threshold_ml:g} ml, "
                f"against rater {block.rater}",
                image_level_table(block.image_level),
            )
        )
        if block.image_level_tests:
            parts.append(
                show(
                    f"Table 3: image level, {method} against rater {block.rater}",
                    image_level_tests_table(study, block),
                )
            )
    if study.truth:
        parts.append(show("Against the truth", truth_table(study)))
    return "\n".join(parts)
