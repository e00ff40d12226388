"""What Slurm says about a run's jobs and partitions: `squeue` and `sinfo`, `sacct` only once.

submitit considers a Slurm job over when its result file exists or `sacct` reports a final
state. Without accounting (a small or a test cluster) sacct always fails, so a job that died
without writing its result stays UNKNOWN and a wait for it never ends. `squeue` answers on
every cluster: it lists a job while it is pending or running, and for a few minutes after it
ended (MinJobAge) with its final state. The executor asks it about all of a run's jobs in one
call per poll, and asks `sinfo` what a partition's nodes offer when a job cannot start.
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.errors import BenchError

if TYPE_CHECKING:
    from bench.executors import Attempt
    from bench.pipeline import Unit

log = logging.getLogger(__name__)

# States in which a job is over; any other listed state may still produce a result.
FINAL_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "REVOKED",
        "SPECIAL_EXIT",
        "TIMEOUT",
    }
)
# Pending reasons that only an administrator can clear: the request breaks the partition's
# limits. `Resources` and `ReqNodeNotAvail` clear when nodes free up or return, unless no node
# of the partition is large enough, which `Request.fits` decides.
NEVER_CLEARS = ("PartitionConfig", "PartitionTimeLimit", "PartitionNodeLimit", "BadConstraints")
MAY_NEVER_CLEAR = ("Resources", "ReqNodeNotAvail")
_TIMEOUT_S = 60  # for one squeue, sinfo or sacct call


class SlurmUnavailable(RuntimeError):
    """squeue or sinfo failed (the controller is down or unreachable)."""


@dataclass(frozen=True)
class QueuedJob:
    job_id: str
    state: str  # PENDING, RUNNING, COMPLETING, ... or a final state
    reason: str  # why it is pending ("None" otherwise)
    partition: str

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


@dataclass(frozen=True)
class Node:
    name: str
    cpus: int
    memory_mb: int
    gpus: int


@dataclass(frozen=True)
class Request:
    """What one unit asks of a node."""

    cpus: int
    mem_gb: int
    gpus: int

    def fits(self, node: Node) -> bool:
        # submitit asks for `--mem=<n>GB`, which Slurm reads as n * 1024 MB
        return (
            node.cpus >= self.cpus
            and node.memory_mb >= self.mem_gb * 1024
            and node.gpus >= self.gpus
        )

    def __str__(self) -> str:
        return f"{self.cpus} CPU(s), {self.mem_gb} GB, {self.gpus} GPU(s)"


def queue(job_ids: Sequence[str]) -> dict[str, QueuedJob]:
    """The jobs among `job_ids` that squeue still lists; one that has left is absent."""
    if not job_ids:
        return {}
    command = ["squeue", "--noheader", "--states=all", "--format=%i|%T|%r|%P"]
    done = _call([*command, f"--jobs={','.join(job_ids)}"])
    if done.returncode != 0:
        if "Invalid job id" in done.stderr:  # every one of them has left the queue
            return {}
        raise SlurmUnavailable(f"squeue: {_last_line(done.stderr) or 'failed'}")
    jobs = {}
    for line in done.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4 and parts[0] in job_ids:
            jobs[parts[0]] = QueuedJob(*parts)
    return jobs


def partition_nodes(partition: str | None) -> tuple[str, list[Node]]:
    """(the partition's name, its nodes); None: the cluster's default partition."""
    done = _call(["sinfo", "--noheader", "--Node", "--format=%N|%P|%c|%m|%G"])
    if done.returncode != 0:
        raise SlurmUnavailable(f"sinfo: {_last_line(done.stderr) or 'failed'}")
    name = partition
    nodes: dict[str, Node] = {}
    for line in done.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 5:
            continue
        node, part, cpus, memory, gres = parts
        default = part.endswith("*")
        part = part.rstrip("*")
        if (partition is None and default) or part == partition:
            name = part
            nodes[node] = Node(node, _int(cpus), _int(memory), gpus_in(gres))
    return name or "(default)", list(nodes.values())


def gpus_in(gres: str) -> int:
    """GPUs in a node's generic resources as sinfo shows them: "gpu:4", "gpu:a100:2(S:0-1)",
    "gpu:2,mps:200"; "(null)": none."""
    total = 0
    for item in gres.split(","):
        match = re.match(r"gpu(?::[^:(]+)?:(\d+)", item.strip())
        if match:
            total += int(match.group(1))
    return total


def offer(partition: str | None) -> str:
    """What a partition's nodes offer, in words, for a message."""
    name, nodes = partition_nodes(partition)
    if not nodes:
        return f"partition {name} has no node"
    largest = (
        f"{max(n.cpus for n in nodes)} CPU(s), {max(n.memory_mb for n in nodes) / 1024:.1f} GB, "
        f"{max(n.gpus for n in nodes)} GPU(s)"
    )
    return f"partition {name} has {len(nodes)} node(s), the largest with {largest}"


def never_starts(job: QueuedJob, request: Request) -> str | None:
    """Why a pending job can never start (a message), or None while it may."""
    if job.state != "PENDING":
        return None
    if job.reason.startswith(NEVER_CLEARS):
        return f"pending with reason {job.reason}, which never clears"
    if job.reason.startswith(MAY_NEVER_CLEAR):
        _, nodes = partition_nodes(job.partition)
        if not any(request.fits(node) for node in nodes):
            return f"pending with reason {job.reason} and no node large enough"
    return None


class Watch:
    """The state of a run's Slurm jobs, from one squeue call per poll."""

    def __init__(self, request: Request):
        self.request = request
        self.accounting = Accounting()
        self.outage: str | None = None

    def finished(self, running: Mapping[Unit, Attempt], now: float) -> dict[Unit, str | None]:
        """The units whose attempt is over: None when its result is there, else the error.
        A job that can never start stops the run (BenchError)."""
        try:
            listed: dict[str, QueuedJob] | None = queue(
                [attempt.job.job_id for attempt in running.values()]
            )
            self.outage = None
        except SlurmUnavailable as error:
            if self.outage is None:
                log.warning("%s; asking again (waits are still bounded)", error)
            self.outage, listed = str(error), None
        finished: dict[Unit, str | None] = {}
        for unit, attempt in running.items():
            if attempt.job.paths.result_pickle.exists():
                finished[unit] = None
                continue
            if listed is None:  # no news: only the current wait's limit applies
                error = attempt.overdue(now)
            else:
                job = listed.get(attempt.job.job_id)
                if job is not None:
                    self._check_can_start(unit, job)
                error = attempt.observe(job, now, self.accounting.final_state)
            if error:
                finished[unit] = error
        return finished

    def _check_can_start(self, unit: Unit, job: QueuedJob) -> None:
        try:
            why = never_starts(job, self.request)
            offered = offer(job.partition) if why else ""
        except SlurmUnavailable:
            return  # asked again at the next poll
        if why:
            raise BenchError(
                f"{unit} (job {job.job_id}) can never start: {why}; a unit asks for "
                f"{self.request} and {offered}: lower --cpus-per-unit, --mem-gb or "
                "--gpus-per-unit, or choose another --partition"
            )


class Accounting:
    """`sacct`, for a job's final state once it has left squeue; asked until it first fails
    (clusters without accounting), which is logged once."""

    def __init__(self) -> None:
        self.available = True

    def final_state(self, job_id: str) -> str | None:
        if not self.available:
            return None
        done = _call(["sacct", "--noheader", "--allocations", "--format=State", f"--jobs={job_id}"])
        if done.returncode != 0:
            self.available = False
            log.info(
                "sacct failed (%s): job states come from squeue alone",
                _last_line(done.stderr) or f"exit code {done.returncode}",
            )
            return None
        states = done.stdout.split()
        return states[0] if states else None


def _call(command: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            command, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return subprocess.CompletedProcess(command, 1, "", str(error))


def _int(text: str) -> int:
    match = re.match(r"\d+", text.strip())
    return int(match.group()) if match else 0


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
