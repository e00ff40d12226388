"""One attempt: start the sandboxed child, hand it one case at a time, time it, enforce limits.

The parent owns every clock. The child receives its spec and then one case per line on its
stdin; a case's image is put into the sandbox only when that case is handed over, so nothing
can be computed ahead of the clock. A case's latency runs from handing it over to the child's
`case_done` (or `case_error`) for that very case, and its mask is taken out before the next
case is handed over. Events only say *that* something happened: a forged or early event can
only make the submission's own case fail or look slower, never faster. Start-up runs from
the start of the process to its `ready` event. Each hand-over carries a fresh random token
that the answer must repeat, so no answer can be written before its case was handed over.
A child that passes a limit is killed with its whole process group (and, in the sandbox,
its PID namespace, which takes every process it started with it).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import queue
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.challenge.cgroup import ChildGroup

MAX_EVENT_BYTES = 1 << 16  # a longer line is not an event
STDERR_TAIL_BYTES = 8000
POLL_S = 0.05
FINISH_GRACE_S = 10.0  # after the last case, the child must exit within this
DEFAULT_TIME_LIMIT_S_PER_CASE = 600.0
DEFAULT_STARTUP_S = 300.0
DEFAULT_MEMORY_GB = 16.0  # address space: importing torch alone reserves about 4 GB

# Hands a case's image to the child (returns why it could not, or ""); takes a case's mask
# out of the sandbox (returns "" when taken, "missing", or "malformed: <why>").
Give = Callable[[str], str]
Take = Callable[[str], str]


@dataclass(frozen=True)
class Limits:
    time_s_per_case: float
    startup_s: float
    memory_gb: float | None


@dataclass
class CaseEvent:
    """One case of an attempt, timed by the parent from hand-over to the child's answer."""

    status: str = "started"  # "started", "done", "error" or "not_given"
    started: float | None = None
    finished: float | None = None
    runner: dict[str, Any] = field(default_factory=dict)  # the child's own account
    error_type: str = ""
    error: str = ""
    taken: str = ""  # what taking the mask out found ("" when it was taken)
    token: str = ""  # sent with the hand-over; an answer without it is not about this hand-over
    oom_before: int = 0  # the cgroup's OOM kills when the case was handed over
    oom_killed: bool = False  # the cgroup's OOM killer struck while the case ran

    @property
    def latency_s(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started


@dataclass
class Attempt:
    cases: list[str]
    ready: bool = False
    load_s: float | None = None  # parent-timed: process start to `ready`
    startup_error: str = ""
    finished: bool = False  # every case was handed over and answered
    stopped: str = ""  # "startup" or "case": which limit killed the child
    current: str | None = None  # the case handed over and not yet answered
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
            "load_s": None if self.load_s is None else round(self.load_s, 3),
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


class _Driver:
    """The parent's side of the protocol: hand over cases one by one, as answers arrive."""

    def __init__(
        self,
        process: subprocess.Popen,
        attempt: Attempt,
        give: Give,
        take: Take,
        started: float,
        group: ChildGroup | None,
    ) -> None:
        self.process, self.attempt, self.give, self.take = process, attempt, give, take
        self.started, self.group = started, group
        self.todo = list(attempt.cases)
        self.closed_at: float | None = None

    def send(self, message: dict[str, Any]) -> bool:
        try:
            self.process.stdin.write((json.dumps(message) + "\n").encode("utf-8"))
            self.process.stdin.flush()
        except (OSError, ValueError):  # the child is gone or closed its end
            return False
        return True

    def close(self) -> None:
        if self.closed_at is None:
            self.closed_at = time.monotonic()
            with contextlib.suppress(OSError):
                self.process.stdin.close()

    def next_case(self) -> None:
        """Hand over the next case whose image could be put into the sandbox."""
        attempt = self.attempt
        while self.todo:
            case = self.todo.pop(0)
            record = attempt.events.setdefault(case, CaseEvent())
            problem = self.give(case)
            if problem:
                record.status, record.error = "not_given", problem
                continue
            record.oom_before = self.group.oom_kills() if self.group else 0
            record.token = secrets.token_hex(16)
            record.started = time.monotonic()
            attempt.current, attempt.current_started = case, record.started
            if not self.send({"case": case, "token": record.token}):
                self.close()
            return
        attempt.finished = True
        self.close()

    def _answers_current(self, event: dict[str, Any]) -> bool:
        current = self.attempt.current
        if current is None or event.get("case") != current:
            return False
        return hmac.compare_digest(str(event.get("token", "")), self.attempt.events[current].token)

    def note_oom(self, record: CaseEvent) -> None:
        if self.group and self.group.oom_kills() > record.oom_before:
            record.oom_killed = True

    def apply(self, event: dict[str, Any], arrived: float) -> None:
        """One event; anything but an answer about the case in hand only informs."""
        attempt, kind = self.attempt, event["event"]
        if kind == "sandbox_note":
            index = event.get("index")
            attempt.sandbox_notes.append(
                (str(event.get("what")), index if isinstance(index, int) else -1)
            )
        elif kind == "ready" and not attempt.ready:
            attempt.ready, attempt.load_s = True, arrived - self.started
            self.next_case()
        elif kind == "startup_error" and not attempt.ready:
            attempt.startup_error = _one_line(event)
        elif kind in ("case_done", "case_error") and self._answers_current(event):
            case = attempt.current
            record = attempt.events[case]
            record.finished = arrived
            self.note_oom(record)
            attempt.current, attempt.current_started = None, None
            if kind == "case_done":
                runner = event.get("runner")
                record.status, record.runner = "done", runner if isinstance(runner, dict) else {}
                record.taken = self.take(case)
            else:
                record.status = "error"
                record.error_type = str(event.get("error_type", ""))[:100]
                record.error = str(event.get("error", ""))[:500]
            self.next_case()


def run_attempt(
    command: Sequence[str],
    cwd: Path,
    env: dict[str, str],
    preexec: Callable[[], None],
    spec: dict[str, Any],
    cases: list[str],
    limits: Limits,
    log_path: Path,
    give: Give,
    take: Take,
    group: ChildGroup | None = None,
) -> Attempt:
    """Run the child once over `cases`; never raises for anything the child does.

    With a cgroup (`group`, which the child joined in `preexec`), the OOM killer's strikes
    are charged to the case in hand, and every process left in the group is killed at the
    end, whatever the isolation level."""
    attempt = Attempt(list(cases))
    started = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            preexec_fn=preexec,
            start_new_session=True,  # its own process group, killed as one
        )
    driver = _Driver(process, attempt, give, take, started, group)
    events: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_read_events, args=(process.stdout, events), daemon=True)
    reader.start()
    try:
        if not driver.send(spec):
            driver.close()
        _follow(process, driver, events, limits)
    except BaseException:  # e.g. Ctrl-C in the parent: the child must not outlive it
        _kill(process)
        process.wait()
        raise
    finally:
        driver.close()
        if group:
            group.kill_all()
    reader.join(timeout=2.0)
    process.stdout.close()
    attempt.wall_s = time.monotonic() - started
    attempt.stderr_tail = _tail(log_path)
    return attempt


def _follow(
    process: subprocess.Popen, driver: _Driver, events: queue.Queue, limits: Limits
) -> None:
    """Apply events as they come and kill the child at a limit, until it has exited."""
    attempt = driver.attempt
    while True:
        try:
            arrived, event = events.get(timeout=POLL_S)
        except queue.Empty:
            event = None
        if event is not None:
            driver.apply(event, arrived)
        now = time.monotonic()
        limit = _passed_limit(attempt, limits, driver.started, now)
        if limit:
            attempt.stopped = limit
            _kill(process)
        elif driver.closed_at is not None and now - driver.closed_at > FINISH_GRACE_S:
            _kill(process)  # done with every case but lingering: not a case's failure
        if _reaped(process, attempt) is not None:
            while not events.empty():  # answers written just before the exit
                arrived, event = events.get_nowait()
                if event is not None:
                    driver.apply(event, arrived)
            if attempt.current is not None:  # the case it died in
                driver.note_oom(attempt.events[attempt.current])
            return


def _one_line(event: dict[str, Any]) -> str:
    kind, text = str(event.get("error_type", ""))[:100], str(event.get("error", ""))[:500]
    return f"{kind}: {text}" if text else kind


def _passed_limit(attempt: Attempt, limits: Limits, started: float, now: float) -> str:
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
