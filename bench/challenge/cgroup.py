"""A cgroup around the submission, where the machine lets the harness make one.

An rlimit binds one process: three 2 GB helpers pass a 5 GB `RLIMIT_AS` together. A memory
cgroup binds the submission as a whole (every process it starts stays in it), counts what
the processes really use, and lets the harness kill every one of them at the end, at any
isolation level. The harness makes a child cgroup of its own (cgroup v2's unified tree, or
v1's memory hierarchy), sets the limit, and the child process joins it between fork and
exec. Where that is not allowed (no write access, no memory controller delegated), there is
no cgroup and the record says so: the memory limit is then per process.

No library manages cgroups from inside a process portably across v1 and v2 (systemd's
transient scopes need a running systemd), so this is a few file writes by hand.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
KILL_ROUNDS = 50


@dataclass(frozen=True)
class Layout:
    """Where one cgroup version keeps the files the harness needs."""

    version: int
    limit: str  # the memory limit in bytes
    oom_counter: str  # a file with an `oom_kill N` line
    kill: str | None  # writing "1" kills every process (v2 only)


V1 = Layout(1, "memory.limit_in_bytes", "memory.oom_control", None)
V2 = Layout(2, "memory.max", "memory.events", "cgroup.kill")


@dataclass(frozen=True)
class ChildGroup:
    """A cgroup made for one challenge run; the child joins it with `join` (in preexec)."""

    path: Path
    layout: Layout

    @property
    def description(self) -> str:
        return f"cgroup v{self.layout.version} {self.path}"

    def join(self) -> None:
        """Move the calling process into the group (its children follow it)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def oom_kills(self) -> int:
        """How many processes the group's OOM killer has killed so far."""
        try:
            text = (self.path / self.layout.oom_counter).read_text()
        except OSError:
            return 0
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return 0

    def processes(self) -> list[int]:
        try:
            text = (self.path / "cgroup.procs").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    def kill_all(self) -> None:
        """SIGKILL every process in the group, until none is left (or rounds run out)."""
        if self.layout.kill:
            with contextlib.suppress(OSError):
                (self.path / self.layout.kill).write_text("1")
        for _ in range(KILL_ROUNDS):
            pids = self.processes()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)

    def remove(self) -> None:
        self.kill_all()
        for _ in range(KILL_ROUNDS):  # a killed process leaves the group a moment later
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)


def own_cgroup(proc_cgroup: str, root: Path = CGROUP_ROOT) -> tuple[Path, Layout] | None:
    """The folder of this process's memory cgroup, and its version; None if there is none."""
    for line in proc_cgroup.splitlines():
        number, controllers, path = line.split(":", 2)
        relative = path.lstrip("/")
        if number == "0" and (root / "cgroup.controllers").is_file():
            return root / relative, V2
        if "memory" in controllers.split(",") and (root / "memory").is_dir():
            return root / "memory" / relative, V1
    return None


def make_child_group(
    memory_bytes: int | None,
    proc_cgroup: Path = Path("/proc/self/cgroup"),
    root: Path = CGROUP_ROOT,
) -> tuple[ChildGroup | None, str]:
    """A new cgroup under this process's own with the memory limit set, or None and why."""
    try:
        found = own_cgroup(proc_cgroup.read_text(), root)
    except OSError as error:
        return None, f"no cgroup: {proc_cgroup} unreadable ({error.strerror})"
    if found is None:
        return None, "no cgroup: no memory controller is mounted"
    parent, layout = found
    if layout is V2:
        with contextlib.suppress(OSError):  # delegates the controller; refused if not ours
            (parent / "cgroup.subtree_control").write_text("+memory")
    path = parent / f"bench-challenge-{uuid.uuid4().hex[:12]}"
    try:
        path.mkdir()
    except OSError as error:
        return None, f"no cgroup: cannot create one under {parent} ({error.strerror})"
    group = ChildGroup(path, layout)
    try:
        if memory_bytes is not None:
            (path / layout.limit).write_text(str(memory_bytes))
        elif not (path / layout.limit).is_file():
            raise FileNotFoundError(layout.limit)
    except OSError as error:
        group.remove()
        reason = error.strerror or f"{error} missing"
        return None, f"no cgroup: the memory controller is not available to {parent} ({reason})"
    return group, ""
