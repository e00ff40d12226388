"""What a process killed in the middle of a write leaves, and how the next run treats it.

`bench.io.atomic_path` writes `.<name>.<random>.tmp<suffixes>` and renames it over `<name>`; a
SIGKILL before the rename leaves that file behind. It keeps the final suffixes (SimpleITK picks
the format by extension), so a reader that lists `*.nii.gz` or `*.json` sees it. The kill-9
loop (`test_kill9.py`) meets these leftovers at random; here each one is planted on purpose.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bench.cli
from bench.io import read_image, remove_stale_temporaries
from bench.registry import methods
from bench.splits import make_split, write_split
from tests.factories import write_tiny_dataset
from tests.runner.executor_methods import TEST_METHODS

ROOT = Path(__file__).resolve().parents[2]
KILLED_WRITE = (
    "import os, sys\n"
    "from bench.io import atomic_path\n"
    "with atomic_path(sys.argv[1]) as tmp:\n"
    "    tmp.write_text('half of it')\n"
    "    os._exit(9)  # as SIGKILL would: no finally, no cleanup\n"
)


def killed_write(target: Path) -> Path:
    """Write `target` in another process that dies before the rename; the leftover."""
    before = set(target.parent.iterdir()) if target.parent.is_dir() else set()
    done = subprocess.run([sys.executable, "-c", KILLED_WRITE, str(target)], cwd=ROOT)
    assert done.returncode == 9
    (leftover,) = set(target.parent.iterdir()) - before
    return leftover


def test_a_killed_write_leaves_a_hidden_temporary_and_only_its_own_are_removed(tmp_path):
    mask = killed_write(tmp_path / "p001.nii.gz")
    other = killed_write(tmp_path / "p002.nii.gz")
    record = killed_write(tmp_path / "p001.json")
    assert not (tmp_path / "p001.nii.gz").exists()
    assert mask.name.startswith(".p001.nii.gz.") and mask.name.endswith(".tmp.nii.gz")
    finished = tmp_path / "p003.nii.gz"
    finished.write_bytes(b"final")

    assert remove_stale_temporaries(tmp_path, "p001.nii.gz") == [mask]
    assert other.exists() and record.exists() and finished.exists()
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted([other, record])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p003.nii.gz"]


@pytest.fixture
def test_methods():
    with methods().temporary(TEST_METHODS):
        yield


@pytest.mark.slow
def test_a_run_killed_while_writing_a_mask_and_publishing_resumes(test_methods, tmp_path):
    """Without the runner's cleanup the scorer took `.p003.nii.gz.<random>.tmp.nii.gz` for a
    prediction of case `.p003.nii.gz.<random>.tmp` and every rerun failed; without the
    leaderboard skipping hidden files, a half-copied results file broke every later publish."""
    dataset = write_tiny_dataset(tmp_path / "tiny")
    write_split(dataset, make_split(dataset, n_folds=2))
    work, board = tmp_path / "work", tmp_path / "board"
    argv = ["run", "--method", "exec_dim", "--dataset", str(dataset.root), "--profile", "smoke"]
    argv += ["--quiet", "--workdir", str(work), "--publish", "--leaderboard", str(board)]
    assert bench.cli.main(argv) == 0
    predictions = work / "predictions" / "exec_dim" / "smoke"
    first = (predictions / "p003.nii.gz").read_bytes()

    # As if killed while writing p003's mask: its probability is there, no mask, no record.
    (predictions / "p003.nii.gz").unlink()
    (predictions / "records" / "p003.json").unlink()
    mask_leftover = killed_write(predictions / "p003.nii.gz")
    shutil.copyfile(predictions / "p002.nii.gz", mask_leftover)  # a whole mask, even
    # ... and a publish killed while copying the results file into the leaderboard.
    copy_leftover = killed_write(board / "results" / "exec_dim__tiny__smoke.json")

    assert bench.cli.main(argv) == 0
    assert not mask_leftover.exists() and not copy_leftover.exists()
    assert (predictions / "p003.nii.gz").read_bytes() == first
    mask, _ = read_image(predictions / "p003.nii.gz")
    image, _ = read_image(dataset.case("p003").image)
    assert np.array_equal(mask, (image / 10.0 - TEST_METHODS["exec_dim"].offset > 0))
    assert [p.name for p in (board / "results").iterdir()] == ["exec_dim__tiny__smoke.json"]


def test_the_leaderboard_never_reads_a_half_copied_results_file(tmp_path):
    from bench.leaderboard.collect import load_all

    results = tmp_path / "results"
    killed_write(results / "m__tiny__smoke.json")  # "half of it": not even JSON
    assert load_all(results) == []


def test_checkpoints_a_killed_run_was_writing_are_removed_before_training(tmp_path):
    """nnU-Net's checkpoints (hundreds of MB on the paper profile) are written atomically; the
    adapter deletes what a killed run left in the fold's folder (here: training is finished,
    so nothing else happens)."""
    from baselines.nnunet.adapters import NnUNet3d
    from baselines.nnunet.workspace import Workspace
    from bench.profiles import get_profile

    workspace = Workspace(tmp_path / "nnunet")
    adapter = NnUNet3d(device="cpu", progress=False)
    folder = workspace.trainer_dir(adapter.trainer_name, adapter.configuration) / "fold_0"
    leftover = killed_write(folder / "checkpoint_best.pth")
    (folder / "checkpoint_final.pth").write_bytes(b"weights")
    adapter._train(workspace, 0, get_profile("smoke"))
    assert os.listdir(folder) == ["checkpoint_final.pth"]
    assert not leftover.exists()
