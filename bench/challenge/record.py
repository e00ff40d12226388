"""The challenge record, `<out>/challenge_record.json`: per case, what happened and why.

Every case ends in exactly one status; only `ok` cases have a mask in the output folder.
The organiser reads the record (and `bench challenge score` reads its case list), so it says
what isolation the platform allowed and which limits applied.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RECORD_NAME = "challenge_record.json"
RECORD_FORMAT = "bench-challenge-record/1"
STATUSES = ("ok", "timeout", "memory", "error", "crashed", "not_run", "missing", "malformed")
_MEMORY_HINTS = ("can't allocate memory", "cannot allocate memory", "out of memory", "bad_alloc")


@dataclass
class CaseOutcome:
    case: str
    status: str = "not_run"
    reason: str = ""
    latency_s: float | None = None  # parent-timed: case_start to case_done event
    attempt: int | None = None  # which child process ran it (0-based)
    runner: dict[str, Any] = field(default_factory=dict)  # the runner's own record (child-reported)

    def fail(self, status: str, reason: str) -> None:
        if status not in STATUSES or status == "ok":
            raise ValueError(f"not a failure status: {status!r}")
        self.status, self.reason = status, reason


def is_memory_error(error_type: str, error: str) -> bool:
    text = error.lower()
    return error_type == "MemoryError" or any(hint in text for hint in _MEMORY_HINTS)


@dataclass
class ChallengeRecord:
    submission: str
    submission_folder: str
    model: str
    fold: int
    profile: str
    device: str
    limits: dict[str, Any]
    isolation: dict[str, Any]
    cases: list[CaseOutcome]
    attempts: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[CaseOutcome]:
        return [c for c in self.cases if c.status != "ok"]

    def summary(self) -> str:
        """One line: how many cases failed and the first reasons."""
        n, failed = len(self.cases), self.failed
        if not failed:
            return f"{self.submission}: all {n} case(s) predicted"
        shown = "; ".join(f"case {c.case}: {c.status}: {c.reason}" for c in failed[:2])
        more = f"; and {len(failed) - 2} more" if len(failed) > 2 else ""
        return f"{self.submission}: {len(failed)} of {n} case(s) failed ({shown}{more})"

    def to_json(self) -> dict[str, Any]:
        counts = {s: sum(c.status == s for c in self.cases) for s in STATUSES}
        return {
            "format": RECORD_FORMAT,
            **{k: v for k, v in asdict(self).items() if k != "cases"},
            "summary": {k: v for k, v in counts.items() if v},
            "cases": [asdict(c) for c in self.cases],
        }

    def save(self, out_dir: Path) -> Path:
        from bench.io import write_json

        path = Path(out_dir) / RECORD_NAME
        write_json(self.to_json(), path)
        return path
