"""The child's sandbox: Linux namespaces around the submission's process, and its limits.

Three levels, the strongest the platform allows (probed once per run, recorded):

- `full`: `unshare` makes a user, mount, PID and network namespace. Inside it a small shell
  script bind-mounts the sandbox folder onto itself (the only writable place), puts a fresh
  tmpfs on /dev/shm, remounts every other mount read-only, covers the hidden folders (the
  dataset, the organiser's home, the usual Unix-socket folders) with an empty read-only tmpfs,
  and then enters a second, nested user and mount namespace that maps the child to `nobody`.
  Mounts inherited from a more privileged namespace are locked (mount_namespaces(7)), so the
  child can neither unmount the covers nor remount anything writable. A fresh /proc shows only
  the child's own processes, so `/proc/<pid>/root` of the harness is out of reach, and killing
  the namespace's first process kills every process the child started.
- `network`: only `unshare --net --pid --map-root-user` works: no network and a PID namespace
  (every process the child starts dies with it), but the filesystem is the organiser's
  (labels are then protected only by file permissions).
- `none`: no namespaces at all (e.g. macOS): the record says so. The child gets its own
  process group, but a descendant that starts a session of its own outlives the run.

The environment is rebuilt from nothing (no BENCH_*, nnU-Net or dataset paths leak in), and
the memory limit is an rlimit set between fork and exec.
"""

from __future__ import annotations

import json
import resource
import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import BenchError

# Mount points the sandbox replaces rather than remounts read-only.
_REPLACED = ("/proc", "/dev/shm")
# Best-effort covers: where Unix sockets to host services usually live (a new network
# namespace does not cut those), and nothing a Python process needs.
SOCKET_FOLDERS = ("/run", "/var/run", "/tmp/.X11-unix")
# Per-mount flags a remount must repeat: dropping a locked one is refused (EPERM).
_KEPT_FLAGS = ("nosuid", "nodev", "noexec", "noatime", "nodiratime", "relatime", "strictatime")
SHM_SIZE = "256m"
FILE_SIZE_LIMIT_BYTES = 4 << 30  # no single file the child writes may exceed this
PROBE_TIMEOUT_S = 20
HIDDEN_EXIT = 97  # the setup script's exit code when a hidden folder cannot be covered
HIDDEN_FAILED = "hidden: "


@dataclass(frozen=True)
class Mount:
    point: str
    flags: tuple[str, ...]


@dataclass
class Isolation:
    """What the platform allowed, and what the record says about it."""

    level: str  # "full", "network" or "none"
    notes: list[str] = field(default_factory=list)

    @property
    def network(self) -> bool:
        return self.level in ("full", "network")

    @property
    def filesystem(self) -> bool:
        return self.level == "full"


@dataclass(frozen=True)
class SandboxPlan:
    """Everything the outer namespace's setup script does, as plain data."""

    sandbox: Path  # the child's cwd and only writable folder
    hidden: tuple[Path, ...]  # covered; failing to cover one aborts the child (fail closed)
    best_effort: tuple[Path, ...]  # covered where possible; a failure is a note
    read_only: tuple[Mount, ...]  # remounted read-only; a failure is a note


def mounts(mountinfo: str = "/proc/self/mountinfo") -> list[Mount]:
    """This process's mount points (the child's namespace starts as a copy of them)."""
    found = []
    for line in Path(mountinfo).read_text(encoding="utf-8").splitlines():
        fields_ = line.split()
        point = _unescape(fields_[4])
        flags = tuple(f for f in fields_[5].split(",") if f in _KEPT_FLAGS)
        found.append(Mount(point, flags))
    return found


def _unescape(text: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        text = text.replace(code, char)
    return text


def read_only_mounts(sandbox: Path) -> tuple[Mount, ...]:
    """Every mount but /proc and /dev/shm (replaced) and those inside the sandbox."""
    keep = []
    for mount in mounts():
        point = Path(mount.point)
        if any(_inside(point, Path(r)) for r in _REPLACED) or _inside(point, sandbox):
            continue
        keep.append(mount)
    return tuple(keep)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def setup_script(plan: SandboxPlan) -> str:
    """The outer namespace's shell script; `"$@"` is the child's command line.

    It reports what it could not do on stdout, the event pipe (JSON lines), so the parent's
    record can say so; a hidden folder it cannot cover stops it with exit code 97.
    """
    q = shlex.quote
    lines = [
        "set -u",
        'note() { printf \'{"event": "sandbox_note", "what": "%s", "index": %s}\\n\' "$1" "$2" ; }',
        f"mount --bind {q(str(plan.sandbox))} {q(str(plan.sandbox))} || exit 96",
        f"mount -t tmpfs -o nosuid,nodev,size={SHM_SIZE} tmpfs /dev/shm 2>/dev/null || note shm 0",
    ]
    for index, mount in enumerate(plan.read_only):
        options = ",".join(("remount", "bind", "ro", *mount.flags))
        lines.append(f"mount -o {options} {q(mount.point)} 2>/dev/null || note read_only {index}")
    # The source name is the generic "tmpfs": the child's mount list shows where the covers
    # are (that cannot be hidden), not which of its tmpfs mounts hide something.
    cover = "mount -t tmpfs -o ro,nosuid,nodev,noexec,size=4k,mode=000 tmpfs"
    for index, path in enumerate(plan.best_effort):
        lines.append(f"{cover} {q(str(path))} 2>/dev/null || note best_effort {index}")
    for index, path in enumerate(plan.hidden):
        lines.append(f"{cover} {q(str(path))} || {{ note hidden {index}; exit {HIDDEN_EXIT}; }}")
    lines += [
        f"cd {q(str(plan.sandbox))} || exit 96",  # the bind mount, not the folder beneath it
        'exec unshare --user --map-user=65534 --map-group=65534 --mount -- "$@"',
    ]
    return "\n".join(lines)


def full_prefix(plan: SandboxPlan) -> list[str]:
    """`unshare ... sh -c SCRIPT sh`: append the child's command line."""
    return [
        shutil.which("unshare") or "unshare",
        "--user",
        "--map-root-user",
        "--mount",
        "--net",
        "--pid",
        "--fork",
        "--kill-child=SIGKILL",
        "--mount-proc",
        "--",
        "/bin/sh",
        "-c",
        setup_script(plan),
        "sh",
    ]


def network_prefix() -> list[str]:
    return [
        shutil.which("unshare") or "unshare",
        "--net",
        "--map-root-user",
        "--pid",
        "--fork",
        "--kill-child=SIGKILL",
        "--",
    ]


def probe(plan: SandboxPlan) -> Isolation:
    """The strongest level that works here, trying each with `true` as the child."""
    if not Path("/proc/self/mountinfo").is_file() or not shutil.which("unshare"):
        return Isolation(
            "none",
            [
                "network isolation unavailable: no Linux `unshare` here",
                "filesystem isolation unavailable: no Linux `unshare` here",
            ],
        )
    full = _try([*full_prefix(plan), "true"], plan)
    if full is None:
        return Isolation("full")
    if full.startswith(HIDDEN_FAILED):  # never a quiet downgrade that leaves it visible
        raise BenchError(f"cannot hide {full.removeprefix(HIDDEN_FAILED)}")
    net = _try([*network_prefix(), "true"], plan)
    fs_note = f"filesystem isolation unavailable: {full}"
    if net is None:
        return Isolation("network", [fs_note])
    return Isolation("none", [f"network isolation unavailable: {net}", fs_note])


def _try(command: list[str], plan: SandboxPlan) -> str | None:
    """None when `command` succeeds, else why not (one line)."""
    try:
        result = subprocess.run(
            command,
            env=minimal_env(plan.sandbox),
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{Path(command[0]).name}: {error}"
    if result.returncode == 0:
        return None
    detail = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
    if result.returncode == HIDDEN_EXIT:
        for line in result.stdout.splitlines():
            try:
                note = json.loads(line)
            except ValueError:
                continue
            index = note.get("index") if isinstance(note, dict) else None
            if note.get("what") == "hidden" and isinstance(index, int) and index < len(plan.hidden):
                return f"{HIDDEN_FAILED}{plan.hidden[index]}: {detail}"
    return f"`unshare` failed: {detail}"


def minimal_env(sandbox: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The child's whole environment: nothing of the parent's but the locale-neutral basics.

    HOME, TMPDIR and the caches point into the sandbox; no variable names the dataset (the
    parent's BENCH_*, nnUNet_* and the like are simply not copied).
    """
    home, tmp = sandbox / "home", sandbox / "tmp"
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "MPLCONFIGDIR": str(tmp),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MALLOC_ARENA_MAX": "2",  # glibc's per-thread arenas otherwise reserve 64 MB each
    }
    return {**env, **(extra or {})}


def limits(
    memory_bytes: int | None, resource_kind: int, join: Callable[[], None] | None = None
) -> Callable[[], None]:
    """A `preexec_fn`: the memory rlimit, a file-size cap and no core dumps, inherited by all,
    and joining the run's cgroup (`join`) where there is one."""

    def apply() -> None:
        if join is not None:
            join()
        if memory_bytes is not None:
            resource.setrlimit(resource_kind, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT_BYTES, FILE_SIZE_LIMIT_BYTES))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def command_for(isolation: Isolation, plan: SandboxPlan, child: Sequence[str]) -> list[str]:
    if isolation.level == "full":
        return [*full_prefix(plan), *child]
    if isolation.level == "network":
        return [*network_prefix(), *child]
    return list(child)


def describe_note(plan: SandboxPlan, what: str, index: int) -> str:
    """A sandbox_note event from the setup script, as a line for the record."""
    if what == "read_only" and 0 <= index < len(plan.read_only):
        return f"could not remount {plan.read_only[index].point} read-only"
    if what == "best_effort" and 0 <= index < len(plan.best_effort):
        return f"could not cover {plan.best_effort[index]}"
    if what == "hidden" and 0 <= index < len(plan.hidden):
        return f"could not cover the hidden folder {plan.hidden[index]}"
    if what == "shm":
        return "could not put a private tmpfs on /dev/shm"
    return f"sandbox note {what!r} {index}"
