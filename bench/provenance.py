"""Where a results file came from: the harness's commit and the machine, without torch.

Scoring commands run in the light core install (no deep learning library), so nothing here
imports torch: the GPU is named only when the process already loaded torch to use it.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path


def git_commit() -> str:
    """The harness's commit ("unknown" outside a checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def available_cores() -> int:
    """The cores this process may run on (its affinity where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def hardware() -> dict[str, str]:
    """Platform, cores and the device that ran the work (the GPU if torch used one)."""
    cores = available_cores()
    info = {"platform": platform.platform(), "cpu_cores": str(cores), "device": f"{cores}-core CPU"}
    torch = sys.modules.get("torch")  # loaded by the run itself; never imported here
    if torch is not None and torch.cuda.is_available():
        info["gpu"] = info["device"] = torch.cuda.get_device_name()
    return info
