"""Folds of one nnU-Net method prepare their shared workspace one process at a time.

`bench run --executor local --max-parallel 2` trains two folds at once; both would write the
raw dataset and preprocess, and preprocessing deletes and rewrites the preprocessed folder
under the other's feet. `preparation_lock` (flock on a file in the workspace) serialises them:
the second process waits, then finds the marker of a finished preparation and redoes nothing.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from baselines.nnunet.workspace import PREPARATION_LOCK, Workspace, preparation_lock

ROOT = Path(__file__).resolve().parents[2]
HOLD = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from baselines.nnunet.workspace import Workspace, preparation_lock\n"
    "with preparation_lock(Workspace(Path(sys.argv[1]))):\n"
    "    print('locked', flush=True)\n"
    "    time.sleep(float(sys.argv[2]))\n"
)


def hold_lock(workspace: Workspace, seconds: float) -> subprocess.Popen:
    """Another process that takes the lock and holds it for `seconds` (or until killed)."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(workspace.root), str(seconds)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "locked"
    return child


def test_the_lock_makes_another_process_wait_until_it_is_released(tmp_path):
    workspace = Workspace(tmp_path / "nnunet")
    child = hold_lock(workspace, 1.5)
    started = time.perf_counter()
    with preparation_lock(workspace):
        waited = time.perf_counter() - started
    assert child.wait(timeout=30) == 0
    assert waited > 0.5  # the child held it for 1.5 s after saying so
    assert (workspace.root / PREPARATION_LOCK).is_file()


def test_a_killed_holder_never_leaves_the_workspace_locked(tmp_path):
    workspace = Workspace(tmp_path / "nnunet")
    child = hold_lock(workspace, 600)
    child.kill()  # SIGKILL: no cleanup runs in the child
    child.wait(timeout=30)
    started = time.perf_counter()
    with preparation_lock(workspace):
        assert time.perf_counter() - started < 5


# --- two processes preparing one workspace for real (nnU-Net, smoke profile) -----------------


def _prepare(dataset_root: str, workdir: str, fold: int, barrier, results) -> None:
    """A child: build fold `fold`'s cases, wait for the other child, prepare the workspace.

    It ignores SIGTERM, as a unit's process under submitit does (`bench run --executor`): a
    process pool forked from it then never joins, which nnU-Net's file listing once did.
    """
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    from baselines.nnunet.adapters import NnUNet3d
    from bench.data.dataset import load_dataset
    from bench.pipeline import fold_cases
    from bench.splits import load_split

    preprocessed = []

    class Counter(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("nnU-Net preprocessed"):
                preprocessed.append(record.getMessage())

    logger = logging.getLogger("baselines.nnunet.planning")
    logger.setLevel(logging.INFO)
    logger.addHandler(Counter())
    try:
        dataset = load_dataset(dataset_root)
        cases = fold_cases(dataset, load_split(dataset), fold, Path(workdir) / "cache")
        barrier.wait(timeout=300)  # both children start preparing at the same moment
        NnUNet3d().prepare(cases, Path(workdir), "smoke")
        results.put((fold, "ok", len(preprocessed)))
    except BaseException as error:  # reported to the test, which fails with it
        results.put((fold, f"{type(error).__name__}: {error}", len(preprocessed)))


@pytest.mark.slow
def test_two_folds_preparing_one_workspace_at_once_both_succeed(head_dataset, tmp_path):
    from baselines.nnunet.planning import preparation_key
    from bench.profiles import get_profile
    from bench.splits import load_split

    workdir = tmp_path / "models" / "nnunet3d" / "smoke"
    context = multiprocessing.get_context("spawn")  # no forking of torch's or ITK's threads
    barrier, results = context.Barrier(2), context.Queue()
    children = [
        context.Process(
            target=_prepare, args=(str(head_dataset.root), str(workdir), k, barrier, results)
        )
        for k in (0, 1)
    ]
    for child in children:
        child.start()
    try:
        outcomes = sorted(results.get(timeout=240) for _ in children)
    finally:
        for child in children:
            child.join(timeout=30)
            if child.is_alive():
                child.kill()

    assert [status for _, status, _ in outcomes] == ["ok", "ok"]
    assert sum(count for _, _, count in outcomes) == 1  # the second found the work done
    workspace = Workspace(workdir / "nnunet")
    split = load_split(head_dataset)
    expected = sorted({c for fold in split.folds for c in (*fold.train, *fold.val)})
    data = workspace.preprocessed_dataset / "nnUNetPlans_3d_fullres"
    stored = sorted(p.name for p in data.iterdir())
    assert stored == sorted(f"{c}{s}" for c in expected for s in (".b2nd", ".pkl", "_seg.b2nd"))
    marker = workspace.preprocessed_dataset / "prepared_3d_fullres.json"
    key = preparation_key(workspace, "3d_fullres", get_profile("smoke"))
    assert json.loads(marker.read_text(encoding="utf-8")) == json.loads(json.dumps(key))
    splits = json.loads((workspace.preprocessed_dataset / "splits_final.json").read_bytes())
    assert [f["val"] for f in splits] == [sorted(f.val) for f in split.folds]
