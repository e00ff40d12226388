"""`bench run`'s options and user errors: one line on stderr and exit code 2, before anything
trains."""

from __future__ import annotations

import pytest

import bench.cli
from bench.adapter import FoldCases, Predictor
from bench.pipeline import claim_workdir
from bench.registry import methods
from bench.results import load_results
from bench.splits import make_split, write_split
from tests.factories import write_tiny_dataset
from tests.runner.test_pipeline import Toy


@pytest.fixture
def dataset(tmp_path):
    data = write_tiny_dataset(tmp_path / "tiny")
    write_split(data, make_split(data, n_folds=2))
    return data


def run(argv, capsys):
    code = bench.cli.main(["run", *argv])
    return code, capsys.readouterr().err.strip().splitlines()


def test_unknown_method(dataset, capsys):
    code, err = run(["--method", "nnunet3dd", "--dataset", str(dataset.root)], capsys)
    assert code == 2 and len(err) == 1 and "did you mean 'nnunet3d'" in err[0]


def test_dataset_failing_validation(dataset, capsys, tmp_path):
    (dataset.root / "images" / f"{dataset.cases[0].id}.nii.gz").write_bytes(b"not nifti")
    code, err = run(["--method", "nnunet3d", "--dataset", str(dataset.root), "--quiet"], capsys)
    assert code == 2 and err and all(line.startswith("error: ") for line in err)
    assert any(dataset.cases[0].id in line for line in err)


def test_workdir_of_another_dataset(dataset, capsys, tmp_path):
    other = write_tiny_dataset(tmp_path / "other", n_patients=5, seed=2)
    claim_workdir(tmp_path / "work", other)
    argv = ["--method", "nnunet3d", "--dataset", str(dataset.root), "--quiet"]
    code, err = run([*argv, "--workdir", str(tmp_path / "work")], capsys)
    assert code == 2 and len(err) == 1 and "holds a run of dataset" in err[0]


def test_malformed_split_file(dataset, capsys):
    path = dataset.root / "splits.json"
    path.write_text('{"format_version": 1, "folds": {}}', encoding="utf-8")
    code, err = run(["--method", "nnunet3d", "--dataset", str(dataset.root), "--dry-run"], capsys)
    assert code == 2 and err == [f"error: {path}: is not a split file: dataset_name is missing"]


def test_malformed_folds(dataset, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.cli.main(["run", "--method", "nnunet3d", "--folds", "a,b"])
    assert exit_info.value.code == 2
    assert "--folds must look like 0,1,2" in capsys.readouterr().err


class SeedSpy(Toy):
    """Remembers the seed each fold was trained with."""

    seeds: list[int] = []

    def fit(self, train_cases: FoldCases, fold, workdir, profile) -> Predictor:
        SeedSpy.seeds.append(profile.seed)
        return super().fit(train_cases, fold, workdir, profile)


def test_seed_option(tmp_path, capsys):
    """`--seed` trains with that seed, records it in the results file and on the method
    page, and a fold trained with another seed is refused rather than reused."""
    data = write_tiny_dataset(tmp_path / "tiny", n_patients=4, truth="truth")
    write_split(data, make_split(data, n_folds=2))
    argv = ["--method", "toy_seed", "--dataset", str(data.root), "--profile", "smoke"]
    argv += ["--workdir", str(tmp_path / "work"), "--quiet"]
    SeedSpy.seeds = []
    with methods().temporary({"toy_seed": SeedSpy}):
        code, err = run(
            [*argv, "--seed", "3", "--publish", "--leaderboard", str(tmp_path / "lb")], capsys
        )
        assert code == 0, err
        assert SeedSpy.seeds == [3, 3]
        (results_path,) = (tmp_path / "lb" / "results").glob("toy_seed__*.json")
        assert load_results(results_path).seed == 3
        (page,) = (tmp_path / "lb" / "methods").glob("toy_seed__*.md")
        assert "`smoke`, training seed 3" in page.read_text(encoding="utf-8")
        code, err = run([*argv, "--seed", "4"], capsys)
        assert code == 2 and len(err) == 1 and "trained with another 'smoke' profile" in err[0]
        code, err = run([*argv, "--seed", "3", "--executor", "local"], capsys)
        assert code == 2 and err == [
            "error: --seed works with --executor inline; with local units train with the "
            "profile's seed"
        ]
    with pytest.raises(SystemExit) as exit_info:
        bench.cli.main(["run", "--method", "nnunet3d", "--seed", "-1"])
    assert exit_info.value.code == 2
    assert "--seed must be a whole number >= 0, not '-1'" in capsys.readouterr().err
