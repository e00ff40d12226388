"""User-facing errors: each one renders as a single line naming the case, file and problem.

The CLI turns any `BenchError` into that line on stderr and exit code 2 (a traceback only
with `--debug`). Library code raises these for bad input; bugs stay ordinary exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class BenchError(Exception):
    """A problem with the user's input or environment, explained in one line."""


@dataclass(frozen=True)
class Problem:
    """One validation finding: which case, which file, what is wrong."""

    problem: str
    case: str | None = None
    file: str | Path | None = None

    def __str__(self) -> str:
        where = []
        if self.case is not None:
            where.append(f"case {self.case}")
        if self.file is not None:
            where.append(str(self.file))
        return f"{': '.join(where)}: {self.problem}" if where else self.problem


class InputError(BenchError):
    """One bad input: a case, a file and what is wrong with it."""

    def __init__(self, problem: str, case: str | None = None, file: str | Path | None = None):
        self.finding = Problem(problem, case, file)
        super().__init__(str(self.finding))


class MethodFailed(BenchError):
    """A method's own code (fit, load or predict) raised: one line naming method, fold, stage.

    The original exception is chained (`raise ... from`), so `bench --debug` shows where.
    """


class ValidationError(BenchError):
    """Several findings at once (dataset validation reports every problem, not the first)."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def short_repr(value: object) -> str:
    """A value as an error line can quote it: at most 80 characters, and a huge integer (whose
    repr Python refuses past 4,300 digits) by name."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**40 else "a huge integer"
    return text if len(text) <= 80 else f"{text[:77]}..."
