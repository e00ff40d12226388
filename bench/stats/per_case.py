"""The evaluator's tidy per-case table, checked once and pivoted to aligned arrays.

Every statistic reads (reference, test) series aligned on one sorted case axis, so that the
shared bootstrap indices mean the same case in every series. A case without a row for a pair
reads as NaN (dropped like an undefined metric), and is logged.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from bench.errors import InputError
from bench.metric_names import (
    KEY_COLUMNS,
    LESION_NAMES,
    METRIC_NAMES,
    NAN_REASON_COLUMN,
    NUMERIC_COLUMNS,
    PER_CASE_COLUMNS,
)

log = logging.getLogger(__name__)


def validate_per_case(table: pd.DataFrame, source: str | Path = "per-case table") -> pd.DataFrame:
    """A clean copy of `table` with PER_CASE_COLUMNS in order; InputError naming `source`.

    A table written before lesion-wise detection existed reads with those columns NaN.
    """
    table = table.assign(**{c: np.nan for c in LESION_NAMES if c not in table.columns})
    missing = [c for c in PER_CASE_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"missing per-case columns {', '.join(missing)}", file=source)
    table = table.loc[:, list(PER_CASE_COLUMNS)].copy()
    for column in KEY_COLUMNS:
        if table[column].isna().any():
            raise InputError(f"empty values in column {column!r}", file=source)
        table[column] = table[column].astype(str)
    for column in NUMERIC_COLUMNS:
        numeric = pd.to_numeric(table[column], errors="coerce")
        bad = numeric.isna() & table[column].notna()
        if bad.any():
            row = table.loc[bad].iloc[0]
            raise InputError(
                f"column {column!r} holds a non-number {row[column]!r} "
                f"(reference {row['reference']}, test {row['test']})",
                case=row["case"],
                file=source,
            )
        table[column] = numeric.astype(np.float64)
    reasons = table[NAN_REASON_COLUMN]
    table[NAN_REASON_COLUMN] = reasons.where(reasons.notna() & (reasons != ""), None)
    duplicated = table.duplicated(list(KEY_COLUMNS))
    if duplicated.any():
        row = table.loc[duplicated].iloc[0]
        raise InputError(
            f"duplicate row for reference {row['reference']}, test {row['test']}",
            case=row["case"],
            file=source,
        )
    return table.reset_index(drop=True)


def read_per_case_csv(path: str | Path) -> pd.DataFrame:
    """Read and validate a per-case CSV written by the evaluator."""
    path = Path(path)
    if not path.is_file():
        raise InputError("per-case metrics file not found", file=path)
    try:
        table = pd.read_csv(path, dtype={c: str for c in KEY_COLUMNS}, keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputError(f"not a readable CSV ({error})", file=path) from error
    return validate_per_case(table, path)


class PairValues:
    """Per (reference, test) pair: an (n_cases, n_metrics) array on one shared case axis."""

    def __init__(self, table: pd.DataFrame, cases: tuple[str, ...] | None = None) -> None:
        self.cases = cases if cases is not None else tuple(sorted(table["case"].unique()))
        position = {case: i for i, case in enumerate(self.cases)}
        self._arrays: dict[tuple[str, str], np.ndarray] = {}
        self._present: dict[tuple[str, str], np.ndarray] = {}
        self._reasons: dict[tuple[str, str], np.ndarray] = {}
        self._warned: set[tuple[str, str]] = set()
        metrics = table.loc[:, list(METRIC_NAMES)].to_numpy(np.float64)
        reasons = table[NAN_REASON_COLUMN].fillna("").to_numpy(object)
        rows = table["case"].map(position)
        for (reference, test), index in table.groupby(["reference", "test"]).indices.items():
            keep = rows.iloc[index].notna().to_numpy()
            where = rows.iloc[index][keep].to_numpy(np.int64)
            array = np.full((len(self.cases), len(METRIC_NAMES)), np.nan)
            array[where] = metrics[index[keep]]
            present = np.zeros(len(self.cases), bool)
            present[where] = True
            why = np.full(len(self.cases), "", dtype=object)
            why[where] = reasons[index[keep]]
            self._arrays[(reference, test)] = array
            self._present[(reference, test)] = present
            self._reasons[(reference, test)] = why

    def has(self, reference: str, test: str) -> bool:
        return (reference, test) in self._arrays

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(self._arrays))

    def rows_present(self, reference: str, test: str) -> int:
        return int(self._present[(reference, test)].sum())

    def metrics(self, reference: str, test: str) -> np.ndarray:
        """(n_cases, n_metrics) in METRIC_NAMES order; NaN where undefined or missing."""
        if not self.has(reference, test):
            raise InputError(
                f"the per-case table has no rows for reference {reference}, test {test}"
            )
        absent = len(self.cases) - self.rows_present(reference, test)
        if absent and (reference, test) not in self._warned:
            self._warned.add((reference, test))
            log.warning(
                "%d cases have no row for reference %s, test %s; treated as undefined",
                absent,
                reference,
                test,
            )
        return self._arrays[(reference, test)]

    def metric(self, reference: str, test: str, metric: str) -> np.ndarray:
        return self.metrics(reference, test)[:, METRIC_NAMES.index(metric)]

    def reasons(self, reference: str, test: str) -> np.ndarray:
        """The evaluator's nan_reason per case ("" where defined or missing)."""
        return self._reasons[(reference, test)]
