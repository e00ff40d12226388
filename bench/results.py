"""The results file: one typed JSON per (method, dataset, profile), the leaderboard's only input.

It carries the run's provenance (versions, hashes, hardware, timings), the study's tables and
the per-case table they came from, so that every number can be re-derived. Loading checks the
schema field by field and re-derives the tables (`bench.stats.verify`); any failure is one
BenchError line naming the file. Writes are atomic: a temporary file, then `os.replace`.
"""

from __future__ import annotations

import functools
import json
import math
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import __version__
from bench.errors import BenchError, short_repr
from bench.evaluate.calibration import Calibration
from bench.io import write_text
from bench.metric_names import (
    KEY_COLUMNS,
    LESION_NAMES,
    METRIC_NAMES,
    NAN_REASON_COLUMN,
    NUMERIC_COLUMNS,
    PER_CASE_COLUMNS,
)
from bench.stats.config import StatsConfig
from bench.stats.per_case import validate_per_case
from bench.stats.roles import RaterRoles
from bench.stats.study import StudyStats, compute_study, study_table
from bench.stats.verify import verify_study

SCHEMA_VERSION = 3  # 2: per-fold postprocessing and training curves; 3: lesion-wise columns
READABLE_VERSIONS = (1, 2, 3)
# Fields a version-1 file lacks, read as empty.
_ADDED_IN_2 = ("postprocessing", "training_curves")
# The per-case columns of versions 1 and 2; version 3 adds the lesion-wise ones (read as NaN).
_PER_CASE_COLUMNS_2 = (*KEY_COLUMNS, *METRIC_NAMES, NAN_REASON_COLUMN)
STORED_DIGITS = 9  # significant digits of the per-case metrics in a results file
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class MethodInfo:
    name: str
    adapter_version: str


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    content_sha256: str
    split_sha256: str


@dataclass(frozen=True)
class HarnessInfo:
    version: str
    git_commit: str


@dataclass(frozen=True)
class Timing:
    train_seconds_per_fold: dict[str, float]
    inference_seconds_per_case: dict[str, float]
    peak_memory_mb: float  # NaN when not measured

    @property
    def train_seconds(self) -> float:
        return float(sum(self.train_seconds_per_fold.values()))


@dataclass(frozen=True)
class PostprocessingInfo:
    """A fold's postprocessing, chosen on its inner hold-out (`bench.runner.postprocess`)."""

    threshold: float
    components: str
    min_component_ml: float
    intracranial: bool
    holdout_cases: tuple[str, ...]
    holdout_dice: float  # mean Dice there with the choice
    plain_dice: float  # with the profile's threshold alone
    candidates: int

    def describe(self) -> str:
        from bench.runner.postprocess import Postprocessing

        rule = Postprocessing(
            self.threshold, self.components, self.min_component_ml, self.intracranial
        )
        return rule.describe()


@dataclass(frozen=True)
class TrainingCurve:
    """One fold's per-epoch training loss and validation pseudo-Dice, as the method logged
    them (empty where it logs none)."""

    train_loss: tuple[float, ...]
    val_pseudo_dice: tuple[float, ...]


@dataclass(frozen=True)
class PerCaseTable:
    """The evaluator's per-case table for the pairs the study used, rows as lists."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    @classmethod
    def from_frame(cls, table: pd.DataFrame) -> PerCaseTable:
        table = table.loc[:, list(PER_CASE_COLUMNS)]
        rows = tuple(tuple(_plain(v) for v in row) for row in table.itertuples(index=False))
        return cls(PER_CASE_COLUMNS, rows)

    def to_frame(self) -> pd.DataFrame:
        """A fresh DataFrame (the parsed table is cached, callers may change the copy)."""
        return self._frame.copy()

    @functools.cached_property
    def _frame(self) -> pd.DataFrame:
        columns = list(self.columns)
        metric_at = [i for i, c in enumerate(columns) if c in NUMERIC_COLUMNS]
        other_at = [i for i, c in enumerate(columns) if c not in NUMERIC_COLUMNS]
        values = np.array([[_number(row[i]) for i in metric_at] for row in self.rows])
        table = pd.DataFrame(
            {columns[i]: [row[i] for row in self.rows] for i in other_at}, dtype=object
        )
        for j, i in enumerate(metric_at):
            table[columns[i]] = values[:, j] if len(self.rows) else np.zeros(0)
        return table.loc[:, columns]


@dataclass(frozen=True)
class Results:
    schema_version: int
    method: MethodInfo
    dataset: DatasetInfo
    profile: str
    harness: HarnessInfo
    hardware: dict[str, str]
    timing: Timing
    stats: StudyStats
    prediction_sha256: dict[str, str]
    per_case: PerCaseTable
    postprocessing: dict[str, PostprocessingInfo] = field(default_factory=dict)  # by fold
    training_curves: dict[str, TrainingCurve] = field(default_factory=dict)  # by fold
    # By target ("truth", "raters"); empty when the run wrote no probability maps. Optional in
    # every schema version: a file without it reads as empty.
    calibration: dict[str, Calibration] = field(default_factory=dict, metadata={"optional": True})
    # The training seed (the profile's or `bench run --seed`); None where the harness did not
    # train the method (`bench score`) or the file predates the field.
    seed: int | None = field(default=None, metadata={"optional": True})

    @property
    def group(self) -> tuple[str, str, str]:
        """Results are only ever ranked against others with the same (dataset, hash, profile)."""
        return (self.dataset.name, self.dataset.content_sha256, self.profile)

    @property
    def stem(self) -> str:
        return f"{self.method.name}__{self.dataset.name}__{self.profile}"

    def method_rows(self, rater: str) -> pd.DataFrame:
        """The per-case rows of this method (as test) against `rater` (as reference), a copy."""
        table = self.per_case.to_frame()
        return table[(table["reference"] == rater) & (table["test"] == self.method.name)]


@dataclass(frozen=True)
class RunMetadata:
    """What `bench run` knows about a run besides the per-case metrics."""

    dataset_name: str
    dataset_sha256: str
    split_sha256: str
    profile: str
    adapter_version: str = "unknown"
    harness_version: str = __version__
    git_commit: str = "unknown"
    hardware: dict[str, str] = field(default_factory=dict)
    train_seconds_per_fold: dict[str, float] = field(default_factory=dict)
    inference_seconds_per_case: dict[str, float] = field(default_factory=dict)
    peak_memory_mb: float = math.nan
    prediction_sha256: dict[str, str] = field(default_factory=dict)
    postprocessing: dict[str, dict[str, Any]] = field(default_factory=dict)  # by fold
    training_curves: dict[str, dict[str, Any]] = field(default_factory=dict)  # by fold
    calibration: dict[str, dict[str, Any]] = field(default_factory=dict)  # by target
    seed: int | None = None

    @classmethod
    def from_mapping(cls, metadata: Mapping[str, Any]) -> RunMetadata:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(metadata) - known)
        if unknown:
            raise ValueError(f"unknown run metadata {unknown}; known: {sorted(known)}")
        try:
            run = cls(**metadata)
        except TypeError as error:  # a required key is missing
            raise ValueError(f"run metadata: {error}") from error
        return cls(
            **{
                **run.__dict__,
                "hardware": {str(k): str(v) for k, v in run.hardware.items()},
                "train_seconds_per_fold": {
                    str(k): float(v) for k, v in run.train_seconds_per_fold.items()
                },
                "inference_seconds_per_case": {
                    str(k): float(v) for k, v in run.inference_seconds_per_case.items()
                },
                "peak_memory_mb": math.nan
                if run.peak_memory_mb is None
                else float(run.peak_memory_mb),
                "prediction_sha256": {str(k): str(v) for k, v in run.prediction_sha256.items()},
            }
        )


def build_results(
    per_case: pd.DataFrame,
    method: str,
    roles: RaterRoles,
    metadata: Mapping[str, Any] | RunMetadata,
    config: StatsConfig | None = None,
) -> Results:
    """The results object of one run: the study computed from `per_case` plus provenance.

    Bad metadata (unknown keys, a missing required key, a name that cannot be a file name, a
    malformed hash) is a ValueError: it is the caller's bug, not the user's input.
    """
    run = metadata if isinstance(metadata, RunMetadata) else RunMetadata.from_mapping(metadata)
    method_info = MethodInfo(method, run.adapter_version)
    dataset = DatasetInfo(run.dataset_name, run.dataset_sha256, run.split_sha256)
    problems = _provenance_problems(method_info, dataset, run.profile, run.prediction_sha256)
    if problems:  # before the study: fail fast
        raise ValueError("; ".join(problems))
    table = _stored_precision(study_table(per_case, method, roles))
    return Results(
        schema_version=SCHEMA_VERSION,
        method=method_info,
        dataset=dataset,
        profile=run.profile,
        harness=HarnessInfo(run.harness_version, run.git_commit),
        hardware=dict(sorted(run.hardware.items())),
        timing=Timing(
            dict(sorted(run.train_seconds_per_fold.items())),
            dict(sorted(run.inference_seconds_per_case.items())),
            run.peak_memory_mb,
        ),
        stats=compute_study(table, method, roles, config or StatsConfig()),
        prediction_sha256=dict(sorted(run.prediction_sha256.items())),
        per_case=PerCaseTable.from_frame(table),
        postprocessing={
            str(k): from_json(v, PostprocessingInfo, f"postprocessing.{k}")
            for k, v in sorted(run.postprocessing.items())
        },
        training_curves={
            str(k): from_json(v, TrainingCurve, f"training_curves.{k}")
            for k, v in sorted(run.training_curves.items())
        },
        calibration={
            str(k): from_json(v, Calibration, f"calibration.{k}")
            for k, v in sorted(run.calibration.items())
        },
        seed=run.seed,
    )


def _stored_precision(table: pd.DataFrame) -> pd.DataFrame:
    """Metrics to 9 significant digits, as stored; the study is computed from these values
    so that a reader re-derives its medians exactly (and files stay half the size)."""
    table = table.copy()
    for column in NUMERIC_COLUMNS:
        table[column] = [float(f"{v:.{STORED_DIGITS}g}") for v in table[column]]
    return table


def save_results(results: Results, path: str | Path) -> Path:
    """Write atomically; the file name is the caller's (see `Results.stem`)."""
    path = Path(path)
    encoded = to_json(results)
    rows = encoded["per_case"].pop("rows")
    encoded["per_case"]["rows"] = "__ROWS__"
    text = json.dumps(encoded, indent=2, allow_nan=False)
    row_lines = ",\n".join("      " + json.dumps(r, allow_nan=False) for r in rows)
    text = text.replace('"__ROWS__"', "[\n" + row_lines + "\n    ]" if rows else "[]", 1)
    write_text(text + "\n", path)
    return path


def load_results(path: str | Path) -> Results:
    """Read, decode and verify one results file; BenchError naming the file otherwise."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise BenchError(f"{path}: results file not found") from error
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        # ValueError: JSONDecodeError, and integers past Python's 4,300-digit limit.
        raise BenchError(f"{path}: not valid JSON ({_first_line(error)})") from error
    if not isinstance(raw, dict):
        raise BenchError(f"{path}: a results file holds a JSON object")
    version = raw.get("schema_version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        readable = ", ".join(str(v) for v in READABLE_VERSIONS)
        raise BenchError(f"{path}: schema version {version!r}, this harness reads {readable}")
    if version == 1:
        for name in _ADDED_IN_2:
            if name in raw:
                raise BenchError(f"{path}: field {name!r} is not part of schema version 1")
            raw[name] = {}
    if version in (1, 2):
        problem = _add_lesion_columns(raw.get("per_case"))
        if problem:
            raise BenchError(f"{path}: {problem} of schema version {version}")
    try:
        results = from_json(raw, Results)
    except RecursionError as error:
        raise BenchError(f"{path}: does not follow the results schema (nested too deep)") from error
    except SchemaError as error:
        raise BenchError(f"{path}: does not follow the results schema: {error}") from error
    problems = _provenance_problems(
        results.method, results.dataset, results.profile, results.prediction_sha256
    )
    if results.stats.method != results.method.name:
        problems.append(
            f"the tables are for {results.stats.method!r}, the file for {results.method.name!r}"
        )
    if not problems:
        problems = _consistency_problems(results) + _calibration_problems(results.calibration)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise BenchError(f"{path}: {problems[0]}{more}")
    return results


def _add_lesion_columns(per_case: Any) -> str:
    """A version 1 or 2 per-case table, in place, with the lesion-wise columns as null (its
    evaluator did not count lesions); what is wrong with it ("" if nothing)."""
    if not isinstance(per_case, dict) or per_case.get("columns") != list(_PER_CASE_COLUMNS_2):
        return f"per_case columns are not {list(_PER_CASE_COLUMNS_2)}, those"
    rows = per_case.get("rows")
    width = len(_PER_CASE_COLUMNS_2)
    if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == width for r in rows):
        return f"per_case rows are not lists of {width} values, as in the table"
    per_case["columns"] = list(PER_CASE_COLUMNS)
    per_case["rows"] = [[*r[:-1], *[None] * len(LESION_NAMES), r[-1]] for r in rows]
    return ""


def _first_line(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text.splitlines()[0][:200]


def _provenance_problems(
    method: MethodInfo, dataset: DatasetInfo, profile: str, predictions: Mapping[str, str]
) -> list[str]:
    problems = []
    for label, name in (("method", method.name), ("dataset", dataset.name), ("profile", profile)):
        if not _NAME.fullmatch(name) or "__" in name:
            problems.append(
                f"{label} name {name!r} must be letters, digits, '.', '_' or '-' (no '__')"
            )
    for label, digest in (
        ("dataset content_sha256", dataset.content_sha256),
        ("dataset split_sha256", dataset.split_sha256),
    ):
        if not _SHA256.fullmatch(digest):
            problems.append(f"{label} is not a sha256 hex digest")
    bad = [case for case, digest in predictions.items() if not _SHA256.fullmatch(digest)]
    if bad:
        problems.append(f"prediction_sha256 of case {bad[0]} is not a sha256 hex digest")
    return problems


def _consistency_problems(results: Results) -> list[str]:
    if tuple(results.per_case.columns) != PER_CASE_COLUMNS:
        return [
            f"per_case columns {list(results.per_case.columns)} are not {list(PER_CASE_COLUMNS)}"
        ]
    try:
        table = validate_per_case(results.per_case.to_frame(), "per_case")
        return verify_study(results.stats, table)
    except (BenchError, ValueError, TypeError) as error:
        return [f"per_case: {error}"]


def _calibration_problems(calibration: Mapping[str, Calibration]) -> list[str]:
    problems = []
    for key, target in calibration.items():
        sizes = {len(target.bin_count), len(target.bin_probability), len(target.bin_observed)}
        if key != target.target:
            problems.append(f"calibration.{key} is for target {target.target!r}")
        elif len(sizes) != 1:
            problems.append(f"calibration.{key}: its bins differ in number")
        elif sum(target.bin_count) != target.voxels:
            problems.append(
                f"calibration.{key}: the bins count {sum(target.bin_count)} voxels, "
                f"not {target.voxels}"
            )
    return problems


def _plain(value: Any) -> Any:
    """Plain JSON values: NaN -> None, numpy scalars -> Python."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    if value in ("inf", "-inf"):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"a metric value must be a number or null, got {short_repr(value)}")
    try:
        return float(value)
    except OverflowError:  # an integer past float's range
        raise ValueError(f"expected a number, got {short_repr(value)}") from None


# --- JSON codec: dataclasses <-> plain JSON, checked against the type hints ---------------


class SchemaError(ValueError):
    """A JSON value does not fit the schema; the message starts with the field's path."""


def to_json(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return _plain(value)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_json(value: Any, hint: Any, where: str = "") -> Any:
    """Decode `value` as `hint` (a dataclass, Enum, scalar, tuple[...], dict[str, ...])."""
    here = where or "top level"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if is_dataclass(hint):
        return _dataclass_from_json(value, hint, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return from_json(value, inner, where)
    if isinstance(hint, type) and issubclass(hint, Enum):
        try:
            return hint(value)
        except ValueError:
            choices = ", ".join(repr(m.value) for m in hint)
            raise SchemaError(f"{here}: {value!r} is not one of {choices}") from None
    if hint is float:
        try:
            return _number(value)
        except ValueError:
            raise SchemaError(f"{here}: expected a number, got {short_repr(value)}") from None
    if hint in (int, str, bool):
        if type(value) is not hint:
            raise SchemaError(f"{here}: expected {hint.__name__}, got {short_repr(value)}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise SchemaError(f"{here}: expected a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_json(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise SchemaError(f"{here}: expected {len(args)} items, got {len(value)}")
        pairs = enumerate(zip(value, args, strict=True))
        return tuple(from_json(v, a, f"{where}[{i}]") for i, (v, a) in pairs)
    if origin is dict:
        if not isinstance(value, dict):
            raise SchemaError(f"{here}: expected an object, got {type(value).__name__}")
        return {k: from_json(v, args[1], f"{where}.{k}") for k, v in value.items()}
    raise TypeError(f"the results schema cannot decode {hint!r}")  # a bug, not bad input


def _dataclass_from_json(value: Any, cls: type, where: str) -> Any:
    here = where or "top level"
    if not isinstance(value, dict):
        raise SchemaError(f"{here}: expected an object, got {type(value).__name__}")
    names = [f.name for f in fields(cls)]
    # A field added after schema 1 was written says so ({"optional": True}) and has a default.
    optional = {f.name for f in fields(cls) if f.metadata.get("optional")}
    missing = [n for n in names if n not in value and n not in optional]
    if missing:
        raise SchemaError(f"{here}: missing field {missing[0]!r}")
    unknown = [k for k in value if k not in names]
    if unknown:
        raise SchemaError(f"{here}: unknown field {unknown[0]!r}")
    hints = _hints(cls)
    decoded = {
        n: from_json(value[n], hints[n], f"{where}.{n}" if where else n)
        for n in names
        if n in value
    }
    try:
        return cls(**decoded)
    except (ValueError, BenchError) as error:
        raise SchemaError(f"{here}: {error}") from None
