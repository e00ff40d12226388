"""One attempt: start the sandboxed child, follow its events, enforce the time limits.

The time limit is per case, measured by the parent from the child's progress events (the
clock of case k starts when its `case_start` arrives), plus a start-up allowance for importing
the submission and loading the model. Because a child could forge progress, a hard overall
limit also applies: start-up allowance + per-case limit x cases in the attempt. A child that
passes a limit is killed with its whole process group (and, in the full sandbox, its PID
namespace, which takes every process it started with it).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_EVENT_BYTES = 1 << 16  # a longer line is not an event
STDERR_TAIL_BYTES = 8000
POLL_S = 0.05
DEFAULT_TIME_LIMIT_S_PER_CASE = 600.0
DEFAULT_STARTUP_S = 300.0
DEFAULT_MEMORY_GB = 16.0  # address space: importing torch alone reserves about 4 GB


@dataclass(frozen=True)
class Limits:
    time_s_per_case: float
    startup_s: float
    memory_gb: float | None

    def overall_s(self, n_cases: int) -> float:
        return self.startup_s + self.time_s_per_case * n_cases


@dataclass
class CaseEvent:
    """What the child said about one case, timed by the parent."""

    status: str = "started"  # "started", "done" or "error"
    started: float | None = None
    finished: float | None = None
    runner: dict[str, Any] = field(default_factory=dict)
    error_type: str = ""
    error: str = ""

    @property
    def latency_s(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started


@dataclass
class Attempt:
    cases: list[str]
    ready: bool = False
    load_s: float | None = None
    startup_error: str = ""
    finished: bool = False
    stopped: str = ""  # "startup", "case" or "overall": which limit killed the child
    current: str | None = None  # the case in progress (when the child stopped, if it did)
    current_started: float | None = None
    events: dict[str, CaseEvent] = field(default_factory=dict)
    sandbox_notes: list[tuple[str, int]] = field(default_factory=list)
    exit: str = ""
    wall_s: float = 0.0
    peak_rss_mb: float | None = None
    stderr_tail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "ready": self.ready,
            "load_s": self.load_s,
            "startup_error": self.startup_error,
            "finished": self.finished,
            "stopped_by_limit": self.stopped or None,
            "exit": self.exit,
            "wall_s": round(self.wall_s, 3),
            "peak_rss_mb": self.peak_rss_mb,
            "stderr_tail": self.stderr_tail,
        }


def _read_events(stream, out: queue.Queue) -> None:
    """Parse JSON lines (ignoring anything else) until EOF; runs in a thread."""
    while True:
        line = stream.readline(MAX_EVENT_BYTES)
        if not line:
            break
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and isinstance(event.get("event"), str):
            out.put((time.monotonic(), event))
    out.put((time.monotonic(), None))


def run_attempt(
    command: Sequence[str],
    cwd: Path,
    env: dict[str, str],
    preexec: Callable[[], None],
    cases: list[str],
    limits: Limits,
    log_path: Path,
) -> Attempt:
    """Run the child once over `cases`; never raises for anything the child does."""
    attempt = Attempt(list(cases))
    expected = set(cases)
    started = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            preexec_fn=preexec,
            start_new_session=True,  # its own process group, killed as one
        )
    events: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_read_events, args=(process.stdout, events), daemon=True)
    reader.start()
    try:
        _follow(process, attempt, events, expected, limits, started)
    except BaseException:  # e.g. Ctrl-C in the parent: the child must not outlive it
        _kill(process)
        process.wait()
        raise
    reader.join(timeout=2.0)
    while not events.empty():  # events written just before the exit
        arrived, event = events.get_nowait()
        if event is not None:
            _apply(attempt, event, arrived, expected)
    process.stdout.close()
    attempt.wall_s = time.monotonic() - started
    attempt.stderr_tail = _tail(log_path)
    return attempt


def _follow(
    process: subprocess.Popen,
    attempt: Attempt,
    events: queue.Queue,
    expected: set[str],
    limits: Limits,
    started: float,
) -> None:
    """Apply events as they come and kill the child at a limit, until it has exited."""
    while True:
        try:
            arrived, event = events.get(timeout=POLL_S)
        except queue.Empty:
            event = None
        if event is not None:
            _apply(attempt, event, arrived, expected)
        limit = _passed_limit(attempt, limits, started, time.monotonic())
        if limit:
            attempt.stopped = limit
            _kill(process)
        if _reaped(process, attempt) is not None:
            return


def _apply(attempt: Attempt, event: dict[str, Any], arrived: float, expected: set[str]) -> None:
    """Update the attempt with one event (events about unexpected cases are ignored)."""
    kind, case = event["event"], event.get("case")
    if kind == "sandbox_note":
        index = event.get("index")
        attempt.sandbox_notes.append(
            (str(event.get("what")), index if isinstance(index, int) else -1)
        )
    elif kind == "ready":
        attempt.ready = True
        load_s = event.get("load_s")
        attempt.load_s = float(load_s) if isinstance(load_s, int | float) else None
    elif kind == "startup_error":
        attempt.startup_error = _one_line(event)
    elif kind == "finished":
        attempt.finished = True
        attempt.current, attempt.current_started = None, None
    elif case in expected and attempt.ready:
        record = attempt.events.setdefault(case, CaseEvent())
        if kind == "case_start" and record.started is None:
            record.started = arrived
            attempt.current, attempt.current_started = case, arrived
        elif kind in ("case_done", "case_error") and record.status == "started":
            record.finished = arrived
            record.status = "done" if kind == "case_done" else "error"
            runner = event.get("runner")
            record.runner = runner if kind == "case_done" and isinstance(runner, dict) else {}
            record.error_type = str(event.get("error_type", ""))[:100]
            record.error = str(event.get("error", ""))[:500]
            if attempt.current == case:
                attempt.current, attempt.current_started = None, None


def _one_line(event: dict[str, Any]) -> str:
    kind, text = str(event.get("error_type", ""))[:100], str(event.get("error", ""))[:500]
    return f"{kind}: {text}" if text else kind


def _passed_limit(attempt: Attempt, limits: Limits, started: float, now: float) -> str:
    if now - started > limits.overall_s(len(attempt.cases)):
        return "overall"
    if not attempt.ready and now - started > limits.startup_s:
        return "startup"
    running = attempt.current_started
    if running is not None and now - running > limits.time_s_per_case:
        return "case"
    return ""


def _kill(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _reaped(process: subprocess.Popen, attempt: Attempt) -> int | None:
    """The exit status once the child is gone (its peak memory from wait4), else None."""
    pid, status, usage = os.wait4(process.pid, os.WNOHANG)
    if pid == 0:
        return None
    process.returncode = os.waitstatus_to_exitcode(status)
    _kill(process)  # anything left in its process group goes with it
    attempt.peak_rss_mb = round(usage.ru_maxrss / 1024.0, 1)  # Linux reports KiB
    code = process.returncode
    attempt.exit = f"signal {_signal_name(-code)}" if code < 0 else f"exit code {code}"
    return code


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _tail(path: Path) -> str:
    size = path.stat().st_size
    with open(path, "rb") as stream:
        stream.seek(max(0, size - STDERR_TAIL_BYTES))
        return stream.read().decode("utf-8", "replace")
