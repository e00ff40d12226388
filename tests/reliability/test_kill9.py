"""`bench run --publish`, killed with SIGKILL again and again, ends where an uninterrupted run ends.

The real command line (the `bench` console script, a process of its own) trains nnU-Net on the
smoke profile (two folds of synthetic heads), predicts, scores and publishes. An uninterrupted
run gives the reference and times each phase. Then one work directory goes through a chain of
runs of the same command, each one resuming what the previous one left. Each run but the last
is killed (SIGKILL to its process group: the scorer's workers die too) at a seeded random
moment of one phase: it waits for the file that opens the phase, then a random part of the
phase's duration in the uninterrupted run. The phases, in order (one a previous kill already
went past is skipped):

    1. training fold 0 (from the start of nnU-Net's preparation to the fold's marker)
    2. inference of fold 0, while a random case's mask is being written (its temporary file)
    3. training fold 1 after its first checkpoint (the next run must continue from it)
    4. scoring
    5. writing the results file and the leaderboard

After every kill, no file under its final name is partial, and the next run says it resumed
from the checkpoint or removed the killed write's temporary files where the kill left some.
At the end every run has exited 0 or been killed, no temporary file is left, and the results
files, the per-case scores, the predictions' bytes and the leaderboard are the uninterrupted
run's, apart from what measures time or names the commit (see `comparable`).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bench.io import check_complete
from bench.splits import Split, load_split
from tests.baselines.synthetic import write_head_dataset

pytestmark = pytest.mark.slow

METHOD, PROFILE = "nnunet3d", "smoke"
SEED = 2024
BENCH = Path(sys.executable).with_name("bench")  # the console script of this environment
ROOT = Path(__file__).resolve().parents[2]
POLL_S = 0.005
STEP_TIMEOUT_S = 240
# A random delay is drawn from this share of the phase's duration in the uninterrupted run:
# the killed runs start and load as much, but a busy machine makes any one run faster or slower.
SHARE_OF_PHASE = 0.7

MODELS = f"work/models/{METHOD}/{PROFILE}"
CHECKPOINTS = f"{MODELS}/nnunet/results/*/*"
PREDICTIONS = f"work/predictions/{METHOD}/{PROFILE}"
SCORES = f"work/scores/{METHOD}/{PROFILE}"
# Files whose appearance marks a moment of the run ("work/": the work directory, "board/": the
# leaderboard); a file counts when it was written during the run being watched.
EVENTS = {
    "preparation starts": f"{MODELS}/nnunet/raw",
    "fold 0 trained": f"{MODELS}/fold_0.done.json",
    "fold 1 checkpoint": f"{CHECKPOINTS}/fold_1/checkpoint_latest.pth",
    "fold 1 final checkpoint": f"{CHECKPOINTS}/fold_1/checkpoint_final.pth",
    "first score": f"{SCORES}/*.json",
    "results written": "work/results/*.json",
    "figure written": "board/figures/*.png",
}  # and, per case, "<case> mask being written" (`atomic_path`'s temporary file), "<case>
# probability written" (written just before the mask) and "<case> predicted" (its record, last)


@dataclass(frozen=True)
class Kill:
    """Kill between two events at a random moment (`closes` None: at once), counting from
    `opens` or the first of `also`; `ahead` says from the files whether the phase is still
    to come."""

    phase: str
    opens: str
    closes: str | None
    ahead: Callable[[Path, Split], bool]
    also: tuple[str, ...] = ()


def kills(split: Split, rng: random.Random) -> tuple[Kill, ...]:
    fold0 = split.fold_ids(0).val
    case = rng.choice(fold0)
    return (
        Kill("training fold 0", "preparation starts", "fold 0 trained", not_trained(0)),
        Kill(  # the mask is written right after the probability, and fast: wait for either
            f"inference fold 0, writing {case}'s mask",
            f"{case} mask being written",
            None,
            lambda root, split: not predicted(root, split, 0),
            also=(f"{case} probability written", f"{fold0[-1]} predicted"),
        ),
        Kill(
            "training fold 1 after a checkpoint",
            "fold 1 checkpoint",
            "fold 1 final checkpoint",
            not_trained(1),
        ),
        Kill("scoring", "first score", "results written", not_scored),
        Kill("results and leaderboard", "results written", "figure written", lambda *_: True),
    )


def not_trained(fold: int) -> Callable[[Path, Split], bool]:
    return lambda root, split: not next(root.glob(f"{CHECKPOINTS}/fold_{fold}/*final.pth"), None)


def predicted(root: Path, split: Split, fold: int) -> bool:
    cases = split.fold_ids(fold).val
    return all((root / PREDICTIONS / "records" / f"{c}.json").is_file() for c in cases)


def not_scored(root: Path, split: Split) -> bool:
    cases = split.validated_cases()
    return not all((root / SCORES / f"{c}.json").is_file() for c in cases)


# Fields that measure time (or memory, or name the commit): they differ between any two runs.
RECORD_TIMINGS = (
    "preprocess_s",
    "inference_s",
    "invert_s",
    "write_s",
    "latency_s",
    "peak_rss_mb",
    "peak_device_mb",
)
README_TIMINGS = ("Train", "Inference / case")
PAGE_TIMINGS = ("Harness", "Training", "Inference", "Peak memory")


@dataclass
class Run:
    """One `bench run` process and what watching it found."""

    root: Path  # holds work/ and board/
    log: Path
    started_ns: int = 0
    process: subprocess.Popen | None = None
    seen: dict[str, float] = field(default_factory=dict)  # event -> seconds after the start
    killed_at: float | None = None

    def start(self, dataset: Path) -> None:
        argv = [str(BENCH), "run", "--method", METHOD, "--dataset", str(dataset)]
        argv += ["--profile", PROFILE, "--quiet", "--workdir", str(self.root / "work")]
        argv += ["--publish", "--leaderboard", str(self.root / "board")]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.root.mkdir(exist_ok=True)
        self.started_ns = time.time_ns()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own process group: one killpg reaches all
                preexec_fn=one_core,
            )

    def elapsed(self) -> float:
        return (time.time_ns() - self.started_ns) / 1e9

    def happened(self, event: str, pattern: str) -> bool:
        if event not in self.seen:
            where, relative = pattern.split("/", 1)
            base = self.root / where
            for path in base.glob(relative):
                try:
                    written = path.stat().st_mtime_ns >= self.started_ns
                except FileNotFoundError:  # renamed away between glob and stat
                    continue
                if written:
                    self.seen[event] = self.elapsed()
                    break
        return event in self.seen

    def kill(self) -> int:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.killed_at = self.elapsed()
        return self.process.wait(timeout=60)


def one_core() -> None:
    """Run on one core. Before the thread count was the profile's (`bench.runner.threads`),
    each process measured its own, and two counts round floats differently: probabilities
    then differed by ~1e-6 between two uninterrupted runs on a busy machine. One core keeps
    the advisory probe quiet and the run's cost predictable."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


@pytest.fixture(scope="module")
def heads(tmp_path_factory):
    return write_head_dataset(tmp_path_factory.mktemp("kill9") / "heads")


def test_bench_run_killed_in_every_phase_resumes_to_the_uninterrupted_result(heads, tmp_path):
    assert BENCH.is_file(), f"no console script {BENCH}: pip install -e ."
    split = load_split(heads)
    rng = random.Random(SEED)
    chain_of_kills = kills(split, rng)
    events = {**EVENTS}
    for case in split.validated_cases():
        events[f"{case} mask being written"] = f"{PREDICTIONS}/.{case}.nii.gz.*.tmp.nii.gz"
        events[f"{case} probability written"] = f"{PREDICTIONS}/probabilities/{case}.nii.gz"
        events[f"{case} predicted"] = f"{PREDICTIONS}/records/{case}.json"
    reference = Run(tmp_path / "reference", tmp_path / "reference.log")
    reference.start(heads.root)
    while reference.process.poll() is None:
        for event, pattern in events.items():
            if "mask being written" not in event:  # too short to be seen reliably
                reference.happened(event, pattern)
        time.sleep(POLL_S)
    assert reference.process.returncode == 0, reference.log.read_text(encoding="utf-8")[-3000:]
    timed = [e for k in chain_of_kills if k.closes for e in (k.opens, k.closes)]
    assert all(e in reference.seen for e in timed), (timed, reference.seen)

    chain = tmp_path / "killed"
    chain.mkdir()
    report: list[str] = []
    expect: list[str] = []  # what the next run's log must say about what a kill left
    for number, kill in enumerate(chain_of_kills, start=1):
        if not kill.ahead(chain, split):
            report.append(f"step {number}: {kill.phase} skipped (a kill went past it)")
            continue
        window = reference.seen[kill.closes] - reference.seen[kill.opens] if kill.closes else 0
        delay = rng.uniform(0.0, SHARE_OF_PHASE * max(window, 0.0))
        run = Run(chain, tmp_path / f"run{number}.log")
        run.start(heads.root)
        waits = [(e, events[e]) for e in (kill.opens, *kill.also)]
        code = kill_after(run, waits, delay)
        log = run.log.read_text(encoding="utf-8")
        assert all(line in log for line in expect), (report, expect, log[-3000:])
        leftovers = temporaries(chain)
        report.append(
            f"step {number}: aimed at {kill.phase} ({kill.opens} + {delay:.2f} s), "
            + (
                f"killed at {run.killed_at:.1f} s in {where_it_stopped(chain, split, run)}"
                if code == -9
                else f"exit {code}"
            )
            + (f"; left {', '.join(p.name for p in leftovers)}" if leftovers else "")
        )
        assert code in (-9, 0), (report, log[-3000:])
        assert not partial_files(chain), report
        expect = [f"fold {k}: resuming nnU-Net training" for k in (0, 1) if mid_training(chain, k)]
        # the runner deletes what a killed write of a case left before predicting the case
        expect += [
            f"removed {p}, left by an interrupted run"
            for p in leftovers
            if "predictions" in p.parts
        ]
    final = Run(chain, tmp_path / "final.log")
    final.start(heads.root)
    code = final.process.wait(timeout=STEP_TIMEOUT_S)
    log = final.log.read_text(encoding="utf-8")
    print("\n".join(report))  # shown with -s
    assert code == 0, (report, log[-3000:])
    assert all(line in log for line in expect), (report, expect)

    assert sum("killed" in line for line in report) >= 3, report
    assert "killed" in report[0] and "training fold 0" in report[0], report
    assert not temporaries(chain), temporaries(chain)
    assert comparable(chain) == comparable(reference.root)


def mid_training(root: Path, fold: int) -> bool:
    folder = next(root.glob(f"{CHECKPOINTS}/fold_{fold}"), None)
    if folder is None:
        return False
    return (folder / "checkpoint_latest.pth").is_file() and not (
        folder / "checkpoint_final.pth"
    ).is_file()


def kill_after(run: Run, events: list[tuple[str, str]], delay: float) -> int:
    """SIGKILL `run` `delay` seconds after the first of `events`; its exit code (0 if it
    ended first)."""
    deadline = time.perf_counter() + STEP_TIMEOUT_S
    poll_s = POLL_S if delay else POLL_S / 10  # "at once": a mask is written in a few ms
    while not any([run.happened(event, pattern) for event, pattern in events]):
        if run.process.poll() is not None:
            return run.process.returncode
        assert time.perf_counter() < deadline, f"none of {events} within {STEP_TIMEOUT_S} s"
        time.sleep(poll_s)
    until = time.perf_counter() + delay
    while time.perf_counter() < until:
        if run.process.poll() is not None:
            return run.process.returncode
        time.sleep(POLL_S)
    return run.kill()


def where_it_stopped(root: Path, split: Split, run: Run) -> str:
    """The phase the files say the run was in when it died."""
    models = root / "work" / "models" / METHOD / PROFILE
    records = root / "work" / "predictions" / METHOD / PROFILE / "records"
    for fold in (0, 1):
        if not (models / f"fold_{fold}.done.json").is_file():
            prepared = list(models.glob("nnunet/preprocessed/*/prepared_*.json"))
            return f"training fold {fold}" if prepared or fold else "preparing nnU-Net's data"
        if not all((records / f"{case}.json").is_file() for case in split.fold_ids(fold).val):
            return f"inference fold {fold}"
    results = list((root / "work" / "results").glob("*.json"))
    if not results or results[0].stat().st_mtime_ns < run.started_ns:
        return "scoring"
    if "published" not in run.log.read_text(encoding="utf-8"):
        return "results and leaderboard"
    return "the end (after publishing)"


def temporaries(root: Path) -> list[Path]:
    """What an interrupted atomic write leaves (`.<name>.<random>.tmp<suffix>`) or a
    `.partial`/`.tmp` file of any other writer."""
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and (".tmp" in path.name or path.name.endswith(".partial"))
    )


def partial_files(root: Path) -> list[str]:
    """Files under their final names that are incomplete. nnU-Net's own files (its raw and
    preprocessed data, logs, plans) are left out: they are guarded by the preparation marker
    and redone when it is missing, and its checkpoints are written atomically."""
    problems = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name.startswith(".") or "nnunet" in path.parts:
            continue
        try:
            if path.name.endswith(".json"):
                json.loads(path.read_text(encoding="utf-8"))
            elif path.name.endswith(".nii.gz"):
                check_complete(path)
            elif path.suffix == ".md":
                assert path.read_text(encoding="utf-8").endswith("\n")
            elif path.suffix == ".png":
                data = path.read_bytes()
                assert data.startswith(b"\x89PNG") and data.endswith(b"IEND\xaeB`\x82")
        except Exception as error:  # any way of being incomplete
            problems.append(f"{path}: {type(error).__name__} {error}")
    return problems


def comparable(root: Path) -> dict[str, object]:
    """Everything a run produced, minus what legitimately differs between two runs:
    - results files: `timing` (train and inference seconds, peak memory), `harness.git_commit`
    - per-case records: the timings and peak memory (`RECORD_TIMINGS`)
    - per-case score cache: its `key` (hashes the masks' paths and modification times)
    - leaderboard README: the `Train` and `Inference / case` columns; method pages: the
      `Harness` (commit), `Training`, `Inference` and `Peak memory` rows. Markdown tables are
      compared cell by cell (tabulate pads a column to its widest cell, a timing included).
    Predictions (masks and probabilities) and figures are compared byte for byte.
    """
    work, board = root / "work", root / "board"
    out: dict[str, object] = {}
    for path in sorted(work.glob("predictions/**/*.nii.gz")):
        out[str(path.relative_to(root))] = path.read_bytes()
    for path in sorted(work.glob("predictions/*/*/records/*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        out[str(path.relative_to(root))] = {
            k: v for k, v in record.items() if k not in RECORD_TIMINGS
        }
    for path in sorted(work.glob("scores/*/*/*.json")):
        out[str(path.relative_to(root))] = json.loads(path.read_text(encoding="utf-8"))["rows"]
    for path in sorted([*work.glob("results/*.json"), *board.glob("results/*.json")]):
        results = json.loads(path.read_text(encoding="utf-8"))
        del results["timing"], results["harness"]["git_commit"]
        out[str(path.relative_to(root))] = results
    out["board/README.md"] = table_cells(
        (board / "README.md").read_text(encoding="utf-8"), columns=README_TIMINGS
    )
    for path in sorted(board.glob("methods/*.md")):
        out[str(path.relative_to(root))] = table_cells(
            path.read_text(encoding="utf-8"), rows=PAGE_TIMINGS
        )
    for path in sorted(board.glob("figures/*.png")):
        out[str(path.relative_to(root))] = path.read_bytes()
    assert len(out) > 30, sorted(out)  # predictions, records, scores, results, leaderboard
    return out


def table_cells(
    markdown: str, columns: tuple[str, ...] = (), rows: tuple[str, ...] = ()
) -> list[object]:
    """Markdown as lines, each table row as its stripped cells; `columns` (by header) and
    `rows` (by first cell) left out."""
    lines: list[object] = []
    dropped: set[int] = set()
    header = True
    for line in markdown.splitlines():
        if not line.startswith("|"):
            lines.append(line)
            header = True
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if header:
            dropped = {i for i, cell in enumerate(cells) if cell in columns}
            header = False
        if cells and cells[0] in rows:
            continue
        cells = [re.sub(r"^:?-+:?$", "---", c) for i, c in enumerate(cells) if i not in dropped]
        lines.append(cells)
    return lines
