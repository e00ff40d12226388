"""The core install: scoring, statistics and the leaderboard import no deep-learning library,
and a command that needs the `methods` extra says so in one line (exit 2).

(`.ci/core_only.sh` runs the same commands in a fresh virtual environment holding the core
alone; these tests check the imports on every `make test`.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import METHODS_EXTRA, missing_extra
from bench.errors import BenchError, MethodFailed
from bench.splits import make_split, write_split
from tests.factories import write_tiny_dataset

ROOT = Path(__file__).resolve().parents[2]
EXTRA_LINE = "pip install 'ncct-stroke-bench[methods]'"
# Each command in one process, in this order; what it imported is read after it returns.
RUN_COMMANDS = """
import json, sys
from bench.cli import main
for argv in json.loads(sys.argv[1]):
    code = main(argv)
    heavy = sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)
    print("RESULT", json.dumps({"command": argv[0], "code": code, "heavy": heavy}), flush=True)
"""


@pytest.fixture(scope="module")
def core_runs(tmp_path_factory) -> dict[str, dict]:
    work = tmp_path_factory.mktemp("core")
    dataset = write_tiny_dataset(work / "tiny")
    split = make_split(dataset, n_folds=2)
    write_split(dataset, split)
    predictions, masks = work / "predictions", work / "submission" / "masks"
    masks.mkdir(parents=True)
    shutil.copytree(dataset.root / "labels" / "C", predictions)
    for case in split.validated_cases():
        shutil.copy(predictions / f"{case}.nii.gz", masks)
    (work / "submission" / "submission.toml").write_text(
        'name = "core_check"\nauthors = ["CI"]\ncontact = "ci@example.org"\n'
        'description = "rater C"\nlicense = "CC0-1.0"\nkind = "predictions"\nentry = "masks"\n'
    )
    metrics = str(work / "metrics.csv")
    commands = [
        ["evaluate", "--dataset", str(dataset.root), "--predictions", str(predictions)]
        + ["--method", "copy_c", "--out", metrics, "--workers", "1", "--cache", "none"],
        ["stats", "--metrics", metrics, "--method", "copy_c", "--dataset", str(dataset.root)]
        + ["--resamples", "200"],
        ["leaderboard", "--check"],
        ["score", "--submission", str(work / "submission"), "--dataset", str(dataset.root)]
        + ["--out", str(work / "scored")],
    ]
    heavy = sorted(METHODS_EXTRA | {"nilearn"})
    done = subprocess.run(
        [sys.executable, "-c", RUN_COMMANDS, json.dumps(commands), json.dumps(heavy)],
        capture_output=True,
        text=True,
        cwd=ROOT,  # `leaderboard --check` reads the repository's leaderboard
        timeout=600,
    )
    results = [json.loads(line[7:]) for line in done.stdout.splitlines() if line[:7] == "RESULT "]
    return {"stderr": done.stderr, **{r["command"]: r for r in results}}


@pytest.mark.slow
@pytest.mark.parametrize("command", ["evaluate", "stats", "leaderboard"])
def test_core_commands_import_no_deep_learning_library(core_runs, command):
    assert command in core_runs, core_runs["stderr"][-3000:]
    assert core_runs[command]["code"] == 0, core_runs["stderr"][-3000:]
    assert core_runs[command]["heavy"] == []


@pytest.mark.slow
def test_bench_score_imports_no_deep_learning_library(core_runs):
    assert core_runs["score"]["code"] == 0, core_runs["stderr"][-3000:]
    assert core_runs["score"]["heavy"] == []


def test_a_missing_extra_package_is_found_through_wrapping_errors():
    def raised(error: BaseException, cause: BaseException) -> BaseException:
        try:
            raise error from cause
        except BaseException as caught:
            return caught

    torch_missing = ModuleNotFoundError("No module named 'torch.nn'", name="torch.nn")
    assert missing_extra(torch_missing) == "torch"
    assert missing_extra(raised(MethodFailed("fit failed"), torch_missing)) == "torch"
    other = ModuleNotFoundError("No module named 'timm'", name="timm")
    assert missing_extra(raised(BenchError("cannot import"), other)) is None
    assert missing_extra(BenchError("plain")) is None


BLOCK_EXTRA = """
import sys
for name in {extra!r}:
    sys.modules[name] = None  # what a core-only install gives: ModuleNotFoundError
from bench.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("executor", ["inline", "local"])
def test_bench_run_without_the_extra_names_it_in_one_line(tmp_path, executor):
    dataset = write_tiny_dataset(tmp_path / "tiny")
    write_split(dataset, make_split(dataset, n_folds=2))
    argv = ["run", "--method", "nnunet3d", "--dataset", str(dataset.root), "--profile", "smoke"]
    argv += ["--quiet", "--workdir", str(tmp_path / "work"), "--folds", "0"]
    argv += ["--executor", "local"] if executor == "local" else []
    code = BLOCK_EXTRA.format(extra=sorted(METHODS_EXTRA))
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300
    )
    missing = "submitit" if executor == "local" else "torch"
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"error: bench run needs the methods extra ({missing} is not installed): {EXTRA_LINE}"
    ]


def test_a_page_describing_postprocessing_imports_no_deep_learning_library():
    """A results file's postprocessing is described by `bench.runner.postprocess`; the runner
    package around it must not pull torch into `bench leaderboard` of a core install."""
    code = (
        "import json, sys\n"
        "from bench.results import PostprocessingInfo\n"
        "info = PostprocessingInfo(0.7, 'largest', 5.0, True, ('a',), 0.5, 0.4, 40)\n"
        "print(info.describe())\n"
        "print(json.dumps(sorted(m for m in json.loads(sys.argv[1]) if m in sys.modules)))\n"
    )
    heavy = sorted(METHODS_EXTRA | {"nilearn"})
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(heavy)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    description, imported = done.stdout.strip().splitlines()
    assert "threshold 0.7" in description
    assert json.loads(imported) == []
