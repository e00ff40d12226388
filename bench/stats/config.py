"""Statistics configuration: margins, alpha, resamples and tested metrics, defaults in one place.

The paper's margins are the defaults (`StatsConfig()`); a later version of the study used
20% / 3 ml / 3 mm (`StatsConfig.revised()`). Every results file stores its configuration, so
a reader always knows which margins a verdict used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum

from bench.metric_names import BY_NAME, METRICS, MarginFamily


@dataclass(frozen=True)
class Margin:
    """A non-inferiority margin, absolute (in the metric's unit) or relative.

    A relative margin is a fraction of the comparator's observed value: for a bias test the
    median of metric(E, A) over the tested pairs, for a precision test the SD of metric(E, A).
    `Margin(0.2, relative=True)` reads "within 20% of what the other rater achieves".
    """

    value: float
    relative: bool = False

    def resolve(self, scale: float) -> float:
        """The absolute margin given the comparator's value (ignored for absolute margins)."""
        return abs(scale) * self.value if self.relative else self.value

    def __str__(self) -> str:
        return f"{100 * self.value:g}%" if self.relative else f"{self.value:g}"


class HolmFamily(str, Enum):
    """Which tests share one Holm-Bonferroni adjustment.

    ALL: every bias test of the method (all raters, all metrics) is one family, and likewise
    every precision test; the conservative reading of "the method is non-inferior to the
    raters". PER_RATER: one family per independent rater, as if each were a separate study.
    """

    ALL = "all"
    PER_RATER = "per_rater"


PAPER_MARGINS: Mapping[str, Margin] = {
    MarginFamily.UNIT_INTERVAL.value: Margin(0.05),
    MarginFamily.VOLUME_ML.value: Margin(2.0),
    MarginFamily.DISTANCE_MM.value: Margin(2.0),
}
REVISED_MARGINS: Mapping[str, Margin] = {
    MarginFamily.UNIT_INTERVAL.value: Margin(0.20, relative=True),
    MarginFamily.VOLUME_ML.value: Margin(3.0),
    MarginFamily.DISTANCE_MM.value: Margin(3.0),
}
# Every metric that has a margin family is tested; volumes are descriptive only.
DEFAULT_TESTED_METRICS: tuple[str, ...] = tuple(
    m.name for m in METRICS if m.margin_family is not MarginFamily.NONE
)


@dataclass(frozen=True)
class StatsConfig:
    """Everything that changes a number in Table 2 or Table 3.

    `ci_level` 0.90 pairs with `alpha` 0.05: the upper bound of a two-sided 90% interval is a
    one-sided 95% bound, so a CI verdict and a one-sided test at alpha agree.
    `precision_margin` 0 is the paper's "lower boundary 0" (see docs/statistics.md).
    """

    resamples: int = 1000
    seed: int = 0
    alpha: float = 0.05
    ci_level: float = 0.90
    margins: dict[str, Margin] = field(default_factory=lambda: dict(PAPER_MARGINS))
    precision_margin: Margin = Margin(0.0)
    tested_metrics: tuple[str, ...] = DEFAULT_TESTED_METRICS
    image_level_threshold_ml: float = 20.0
    holm_family: HolmFamily = HolmFamily.ALL

    def __post_init__(self) -> None:
        problems = []
        if self.resamples < 10:
            problems.append(f"resamples must be at least 10, got {self.resamples}")
        if not 0 < self.alpha < 1:
            problems.append(f"alpha must be in (0, 1), got {self.alpha}")
        if not 0 < self.ci_level < 1:
            problems.append(f"ci_level must be in (0, 1), got {self.ci_level}")
        if not math.isfinite(self.image_level_threshold_ml):
            problems.append("image_level_threshold_ml must be finite")
        for name in self.tested_metrics:
            if name not in BY_NAME:
                problems.append(f"unknown metric {name!r} in tested_metrics")
            elif BY_NAME[name].margin_family.value not in self.margins:
                problems.append(f"no margin for {name} ({BY_NAME[name].margin_family.value})")
        for family, margin in self.margins.items():
            if family not in {f.value for f in MarginFamily}:
                problems.append(f"unknown margin family {family!r}")
            if not (math.isfinite(margin.value) and margin.value >= 0):
                problems.append(f"margin for {family} must be finite and >= 0")
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def paper(cls, **overrides: object) -> StatsConfig:
        """The paper's protocol: 0.05 / 2 ml / 2 mm, alpha 0.05, R = 1000."""
        return replace(cls(), **overrides)

    @classmethod
    def revised(cls, **overrides: object) -> StatsConfig:
        """The later version of the study: 20% (relative) / 3 ml / 3 mm."""
        return replace(cls(margins=dict(REVISED_MARGINS)), **overrides)

    def margin_for(self, metric: str) -> Margin:
        return self.margins[BY_NAME[metric].margin_family.value]


MARGIN_PRESETS = {"paper": StatsConfig.paper, "revised": StatsConfig.revised}
