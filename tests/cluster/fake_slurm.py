"""A fake Slurm for unit tests: `sbatch`, `squeue`, `scancel`, `sinfo`, `sacct` and `srun` on
PATH, whose jobs never run but behave as a plan says, one behaviour per submission in order:

    ok                  the job wrote its result and left the queue at once
    raise               the job wrote an error result (a traceback ending in RuntimeError: boom)
    vanish:N            RUNNING for N squeue calls, then no longer listed, without a result
    cancelled:N         RUNNING for N squeue calls, then listed as CANCELLED, without a result
    pending:REASON      PENDING with that reason until cancelled
    running             RUNNING until cancelled
    refuse:LINE|LINE    sbatch refuses the job, printing those lines on stderr

Every call is appended to `<state>/calls.log` ("tool arguments"). The last behaviour repeats.
`sinfo` prints `<state>/sinfo.txt` (lines "node|partition[*]|cpus|memory_mb|gres").
Run as a script, it is the tool named by its first argument.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import sys
from pathlib import Path

TOOLS = ("sbatch", "squeue", "scancel", "sinfo", "sacct", "srun")


class FakeSlurm:
    """The test's handle: install the tools, set the plan, read what was called."""

    def __init__(self, folder: Path, monkeypatch, plan: list[str], sinfo: str = "") -> None:
        self.state = folder / "state"
        (self.state / "jobs").mkdir(parents=True)
        bin_dir = folder / "bin"
        bin_dir.mkdir()
        for tool in TOOLS:
            script = bin_dir / tool
            script.write_text(
                f'#!/bin/sh\nexec {sys.executable} {Path(__file__).resolve()} {tool} "$@"\n',
                encoding="utf-8",
            )
            script.chmod(0o755)
        self.set_plan(plan)
        (self.state / "sinfo.txt").write_text(sinfo, encoding="utf-8")
        monkeypatch.setenv("FAKE_SLURM_STATE", str(self.state))
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def set_plan(self, plan: list[str]) -> None:
        (self.state / "plan.json").write_text(json.dumps(plan), encoding="utf-8")

    def calls(self, tool: str) -> list[list[str]]:
        log = self.state / "calls.log"
        lines = log.read_text(encoding="utf-8").splitlines() if log.is_file() else []
        return [json.loads(line)[1:] for line in lines if json.loads(line)[0] == tool]


# --- the tools ---------------------------------------------------------------------------------


def _job_file(state: Path, job_id: str) -> Path:
    return state / "jobs" / f"{job_id}.json"


def sbatch(state: Path, args: list[str]) -> int:
    plan = json.loads((state / "plan.json").read_text(encoding="utf-8"))
    number = len(list((state / "jobs").glob("*.json")))
    behaviour = plan[min(number, len(plan) - 1)]
    if behaviour.startswith("refuse:"):
        for line in behaviour.removeprefix("refuse:").split("|"):
            print(line, file=sys.stderr)
        return 1
    job_id = str(100 + number)
    text = Path(args[-1]).read_text(encoding="utf-8")
    output = re.search(r"^#SBATCH --output=(.*)$", text, re.MULTILINE).group(1)
    result = Path(output.replace("%j", job_id)).parent / f"{job_id}_0_result.pkl"
    if behaviour in ("ok", "raise"):
        value = ("success", {"job": job_id}) if behaviour == "ok" else ("error", _TRACE)
        with result.open("wb") as file:
            pickle.dump(value, file)
    _job_file(state, job_id).write_text(json.dumps({"plan": behaviour, "polls": 0}), "utf-8")
    print(f"Submitted batch job {job_id}")
    return 0


_TRACE = 'Traceback (most recent call last):\n  File "x.py", line 1\nRuntimeError: boom\n'


def squeue(state: Path, args: list[str]) -> int:
    wanted = next(a.split("=", 1)[1].split(",") for a in args if a.startswith("--jobs="))
    lines = []
    for job_id in wanted:
        path = _job_file(state, job_id)
        if not path.is_file():
            continue
        job = json.loads(path.read_text(encoding="utf-8"))
        kind, _, value = job["plan"].partition(":")
        job["polls"] += 1
        path.write_text(json.dumps(job), encoding="utf-8")
        if kind == "pending":
            lines.append(f"{job_id}|PENDING|{value}|debug")
        elif kind == "running" or kind in ("vanish", "cancelled") and job["polls"] <= int(value):
            lines.append(f"{job_id}|RUNNING|None|debug")
        elif kind in ("cancelled", "scancelled"):
            lines.append(f"{job_id}|CANCELLED|None|debug")
    if not lines:
        print("slurm_load_jobs error: Invalid job id specified", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


def scancel(state: Path, args: list[str]) -> int:
    for job_id in args:
        path = _job_file(state, job_id)
        if path.is_file():
            path.write_text(json.dumps({"plan": "scancelled", "polls": 0}), encoding="utf-8")
    return 0


def sinfo(state: Path, args: list[str]) -> int:
    print((state / "sinfo.txt").read_text(encoding="utf-8"), end="")
    return 0


def sacct(state: Path, args: list[str]) -> int:
    print("Slurm accounting storage is disabled", file=sys.stderr)
    return 1


def srun(state: Path, args: list[str]) -> int:
    return 1


def main(argv: list[str]) -> int:
    tool, args = argv[0], argv[1:]
    state = Path(os.environ["FAKE_SLURM_STATE"])
    with (state / "calls.log").open("a", encoding="utf-8") as log:
        log.write(json.dumps([tool, *args]) + "\n")
    return globals()[tool](state, args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
