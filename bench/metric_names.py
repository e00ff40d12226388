"""The metric vocabulary shared by the evaluator, the statistics and the leaderboard.

One place names every per-case metric, its unit, which direction is better and which
non-inferiority margin family it belongs to, so that no stage re-types a metric name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Direction(str, Enum):
    HIGHER_IS_BETTER = "higher"
    LOWER_IS_BETTER = "lower"
    NEITHER = "neither"


class MarginFamily(str, Enum):
    """Which configured margin a metric's non-inferiority test uses."""

    UNIT_INTERVAL = "unit_interval"  # metrics in [0, 1]: paper margin 0.05
    VOLUME_ML = "volume_ml"  # AVD: paper margin 2 ml
    DISTANCE_MM = "distance_mm"  # ASD, HD95: paper margin 2 mm
    NONE = "none"  # descriptive only (volumes)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    unit: str
    direction: Direction
    margin_family: MarginFamily
    description: str


_U, _V, _D, _N = (
    MarginFamily.UNIT_INTERVAL,
    MarginFamily.VOLUME_ML,
    MarginFamily.DISTANCE_MM,
    MarginFamily.NONE,
)
_HI, _LO, _NE = Direction.HIGHER_IS_BETTER, Direction.LOWER_IS_BETTER, Direction.NEITHER

METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("VS", "", _HI, _U, "volumetric similarity 1 - |FN-FP|/(2TP+FP+FN)"),
    MetricSpec("AVD", "ml", _LO, _V, "absolute volume difference |V_ref - V_test|"),
    MetricSpec("Dice", "", _HI, _U, "2TP/(2TP+FP+FN)"),
    MetricSpec("Precision", "", _HI, _U, "TP/(TP+FP)"),
    MetricSpec("Recall", "", _HI, _U, "TP/(TP+FN)"),
    MetricSpec("ASD", "mm", _LO, _D, "symmetric average surface distance, pooled"),
    MetricSpec("HD95", "mm", _LO, _D, "max of the two directed 95th percentile distances"),
    MetricSpec("SDT0", "", _HI, _U, "surface Dice at 0 mm tolerance (area weighted)"),
    MetricSpec("SDT5", "", _HI, _U, "surface Dice at 5 mm tolerance (area weighted)"),
    MetricSpec("SDT10", "", _HI, _U, "surface Dice at 10 mm tolerance (area weighted)"),
    MetricSpec("V_ref", "ml", _NE, _N, "reference lesion volume"),
    MetricSpec("V_test", "ml", _NE, _N, "test lesion volume"),
)

METRIC_NAMES: tuple[str, ...] = tuple(m.name for m in METRICS)
BY_NAME: dict[str, MetricSpec] = {m.name: m for m in METRICS}

# Lesion-wise detection (bench.evaluate.lesions): counts of 26-connected lesions matched one to
# one at IoU > 0.5, and the reference lesions found and missed by volume bin. Per-case columns
# and method-page figures only: the statistics' tables and tests read METRICS alone.
_SIZE_BINS = (("lt1ml", "< 1 ml"), ("1to10ml", "1-10 ml"), ("gt10ml", "> 10 ml"))
LESION_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("LesionTP", "lesions", _HI, _N, "reference lesions matched by a test lesion"),
    MetricSpec("LesionFP", "lesions", _LO, _N, "test lesions matching no reference lesion"),
    MetricSpec("LesionFN", "lesions", _LO, _N, "reference lesions matching no test lesion"),
    MetricSpec("LesionF1", "", _HI, _N, "2TP/(2TP+FP+FN) over lesions"),
    MetricSpec("LesionCountDiff", "lesions", _LO, _N, "|reference lesions - test lesions|"),
    *(
        spec
        for key, label in _SIZE_BINS
        for spec in (
            MetricSpec(f"LesionTP_{key}", "lesions", _HI, _N, f"matched reference lesions {label}"),
            MetricSpec(f"LesionFN_{key}", "lesions", _LO, _N, f"missed reference lesions {label}"),
        )
    ),
)
LESION_NAMES: tuple[str, ...] = tuple(m.name for m in LESION_METRICS)
# Every numeric per-case column.
NUMERIC_COLUMNS: tuple[str, ...] = (*METRIC_NAMES, *LESION_NAMES)

# Columns of the evaluator's tidy per-case table, in order: one row per (case, reference, test).
KEY_COLUMNS: tuple[str, ...] = ("case", "reference", "test")
NAN_REASON_COLUMN = "nan_reason"
PER_CASE_COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, *NUMERIC_COLUMNS, NAN_REASON_COLUMN)
