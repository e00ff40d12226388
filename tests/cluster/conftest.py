"""A real one-node Slurm for the tests that ask for `slurm_cluster`, started by `start_slurm.sh`
once for their module and stopped after it (the script also stops when this process is gone)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("start_slurm.sh")
START_TIMEOUT_S = 600  # apt-get may have to install the packages first
STOP_TIMEOUT_S = 60


@dataclass(frozen=True)
class Cluster:
    conf: Path  # SLURM_CONF for every client (sbatch, squeue, ...) and for `bench run`
    folder: Path  # the daemons' configuration, state and logs


def why_no_slurm_here() -> str | None:
    """Why this machine cannot start the test scheduler, or None."""
    if not hasattr(os, "geteuid") or not Path("/proc").is_dir():
        return "needs Linux"
    if os.geteuid() != 0:
        return "needs root (the Slurm daemons switch users); run the tests as root to include it"
    tools = ("munged", "slurmctld", "slurmd", "sbatch")
    if not all(shutil.which(tool) for tool in tools) and not shutil.which("apt-get"):
        return "Slurm is not installed and there is no apt-get to install it"
    return None


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture(scope="module")  # stopped as soon as the module's tests are done
def slurm_cluster() -> Iterator[Cluster]:
    reason = why_no_slurm_here()
    if reason:
        pytest.skip(f"no test Slurm: {reason}")
    folder = Path(tempfile.mkdtemp(prefix="bench-slurm-"))  # outside the repository
    ctld_port, slurmd_port = _free_ports(2)
    env = {
        **os.environ,
        "SLURMCTLD_PORT": str(ctld_port),
        "SLURMD_PORT": str(slurmd_port),
        "SLURM_OWNER_PID": str(os.getpid()),  # stops itself should this process be killed,
        "SLURM_DIR_IS_TEMPORARY": "1",  # and then removes the folder
    }
    log_path = folder / "supervisor.log"
    with log_path.open("w", encoding="utf-8") as log:
        supervisor = subprocess.Popen(
            ["bash", str(SCRIPT), str(folder)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # a Ctrl-C of pytest reaches it only through the fixture
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (folder / "ready").is_file():
            if supervisor.poll() is not None or time.monotonic() > deadline:
                lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
                said = [line for line in lines if line.startswith("start_slurm:")]
                pytest.skip(f"no test Slurm: {(said or lines or ['no output'])[-1]}")
            time.sleep(0.5)
        yield Cluster(folder / "slurm.conf", folder)
    finally:
        _stop(supervisor)
        shutil.rmtree(folder, ignore_errors=True)


def _stop(supervisor: subprocess.Popen) -> None:
    """SIGTERM: the script cancels the jobs and stops its daemons; SIGKILL to what is left."""
    if supervisor.poll() is None:
        supervisor.send_signal(signal.SIGTERM)
        try:
            supervisor.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(supervisor.pid, signal.SIGKILL)
            supervisor.wait()
