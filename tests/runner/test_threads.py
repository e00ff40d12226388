"""Same command, same numbers: torch's thread count is the run's setting (the profile's or
`bench run --threads`), recorded in the results file; the start-up probe only advises.

Before, the harness trained and inferred with whichever of 1 and every core a probe found
faster at start-up, so the same `bench run` on a busy and on an idle moment trained other
models (CPU reductions add in another order with another thread count).
"""

from __future__ import annotations

import logging

import pytest
import torch

import bench.cli
import bench.runner.threads as threads_module
from bench.adapter import FoldCases, MethodAdapter, Predictor
from bench.errors import BenchError
from bench.io import sha256_file
from bench.pipeline import run_method
from bench.predictions import output_paths
from bench.profiles import get_profile
from bench.provenance import available_cores
from bench.runner import InferenceSettings
from bench.runner.threads import cpu_threads, resolved_threads
from bench.splits import make_split, write_split
from tests.factories import write_tiny_dataset
from tests.runner.test_runner import Pointwise, toy_predictor


class CountingThreads(torch.nn.Module):
    """Pointwise, remembering torch's thread count at each forward pass."""

    def __init__(self, seen: list[int]):
        super().__init__()
        self.inner = Pointwise()
        self.seen = seen

    def forward(self, x):
        self.seen.append(torch.get_num_threads())
        return self.inner(x)


class ThreadSpy(MethodAdapter):
    def __init__(self):
        self._fit_threads: list[int] = []
        self._predict_threads: list[int] = []

    def fit(self, train_cases: FoldCases, fold, workdir, profile) -> Predictor:
        self._fit_threads.append(torch.get_num_threads())
        return toy_predictor(network=CountingThreads(self._predict_threads), mirror_axes=(2,))


@pytest.fixture
def dataset(tmp_path):
    data = write_tiny_dataset(tmp_path / "tiny", n_patients=4)
    write_split(data, make_split(data, n_folds=2))
    return data


@pytest.fixture
def probe_says(monkeypatch):
    """Make the probe's (remembered) answer whatever the test wants."""

    def set_answer(threads: int) -> None:
        monkeypatch.setattr(threads_module, "_best", threads)
        monkeypatch.setattr(threads_module, "_advised", False)

    return set_answer


@pytest.mark.parametrize("threads", [1, 2])
def test_training_and_inference_use_the_profiles_threads_not_the_probes(
    dataset, tmp_path, probe_says, threads, caplog
):
    probe_says(3 - threads)  # the probe prefers the other count
    spy = ThreadSpy()
    profile = get_profile("smoke").with_overrides(threads=threads)
    with caplog.at_level(logging.INFO, logger="bench.runner.threads"):
        run_method(spy, dataset, profile, tmp_path / "work", folds=[0], progress=False)
    assert spy._fit_threads == [threads]
    assert spy._predict_threads and set(spy._predict_threads) == {threads}
    if available_cores() > 1:  # the probe advises, in one line
        assert [r.message for r in caplog.records if "--threads" in r.message] == [
            f"torch threads: {threads} (the run's setting); a probe finds {3 - threads} faster "
            f"on this machine right now: `bench run --threads {3 - threads}` would be quicker, "
            "with other numbers"
        ]


def test_no_thread_count_means_every_core_and_zero_is_refused(probe_says):
    probe_says(1)
    with cpu_threads(None) as chosen:
        assert chosen == available_cores() == torch.get_num_threads()
    with pytest.raises(BenchError, match="at least 1"):
        resolved_threads(0)


def test_inference_settings_take_the_profiles_threads_unless_told_otherwise():
    demo = get_profile("demo")
    assert InferenceSettings.from_profile(demo).threads == demo.threads
    assert InferenceSettings.from_profile(demo, threads=None).threads == demo.threads
    assert InferenceSettings.from_profile(demo, threads=3).threads == 3
    assert get_profile("smoke").threads == 1


def test_bad_threads_option_is_one_line_and_exit_code_2(dataset, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.cli.main(["run", "--method", "nnunet3d", "--threads", "0"])
    assert exit_info.value.code == 2
    assert "--threads must be a whole number >= 1" in capsys.readouterr().err
    argv = ["run", "--method", "nnunet3d", "--dataset", str(dataset.root), "--quiet"]
    code = bench.cli.main([*argv, "--threads", "2", "--executor", "local"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--threads works with --executor inline" in err[0]


@pytest.mark.slow
@pytest.mark.parametrize("augmentation_workers", [0, 1], ids=["in-process", "one-worker"])
def test_two_smoke_runs_predict_the_same_bytes_whatever_the_probe_says(
    head_dataset, tmp_path, probe_says, augmentation_workers
):
    """The acceptance test of "same command, same numbers": nnU-Net, fold 0, twice, once
    with the probe preferring one thread and once preferring two; with augmentation in the
    training process (smoke) and in a background worker (as `demo` trains), whose seeds
    nnU-Net would otherwise draw from the operating system."""
    profile = get_profile("smoke").with_overrides(augmentation_workers=augmentation_workers)
    hashes = []
    for run, probe in enumerate((1, 2)):
        probe_says(probe)
        result = run_method(
            "nnunet3d", head_dataset, profile, tmp_path / f"run{run}", folds=[0], progress=False
        )
        cases = sorted(result.folds[0].predicted)
        assert cases
        outputs = {c: output_paths(result.layout.predictions_dir, c)[:2] for c in cases}
        hashes.append({c: [sha256_file(p) for p in pair] for c, pair in outputs.items()})
    assert hashes[0] == hashes[1]
