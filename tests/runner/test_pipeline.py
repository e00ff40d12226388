"""The `bench run` pipeline with a toy method: markers, resume, and its one-line errors.

The toy method "trains" instantly and predicts sigmoid(intensity); counting its `fit` and
`load` calls shows what a rerun recomputes. A crash is simulated by raising inside `fit` or
inside the runner's writer, then the run is repeated.
"""

from __future__ import annotations

import pytest

from bench.adapter import FoldCases, MethodAdapter, Predictor
from bench.errors import BenchError, InputError, MethodFailed
from bench.pipeline import claim_workdir, fold_cases, run_method
from bench.runner import is_finished
from bench.splits import make_split, write_split
from tests.factories import write_tiny_dataset
from tests.runner.test_runner import toy_predictor


class Toy(MethodAdapter):
    """Predicts sigmoid(intensity / 10); remembers what it was asked to do."""

    def __init__(self, fail_fit_on_fold: int | None = None):
        self.fail_fit_on_fold = fail_fit_on_fold
        self._calls: list[tuple[str, int]] = []

    def fit(self, train_cases: FoldCases, fold, workdir, profile) -> Predictor:
        self._calls.append(("fit", fold))
        assert not set(c.id for c in train_cases.train) & set(c.id for c in train_cases.val)
        if fold == self.fail_fit_on_fold:
            raise RuntimeError("killed during training")
        return self._predictor()

    def load(self, workdir, fold, profile) -> Predictor:
        self._calls.append(("load", fold))
        return self._predictor()

    @staticmethod
    def _predictor() -> Predictor:
        return toy_predictor(mirror_axes=(2,))


@pytest.fixture
def dataset(tmp_path):
    data = write_tiny_dataset(tmp_path / "tiny", n_patients=6)
    write_split(data, make_split(data, n_folds=3))
    return data


def val_ids(dataset, fold):
    from bench.splits import load_split

    return [c.id for c in fold_cases(dataset, load_split(dataset), fold).val]


def test_folds_are_fitted_once_and_cases_predicted_once(dataset, tmp_path):
    toy = Toy()
    first = run_method(toy, dataset, "smoke", tmp_path / "work", progress=False)
    assert [c for c in toy._calls if c[0] == "fit"] == [("fit", 0), ("fit", 1), ("fit", 2)]
    assert all(f.trained_now and f.predicted for f in first.folds)
    toy._calls.clear()
    again = run_method(toy, dataset, "smoke", tmp_path / "work", progress=False)
    assert toy._calls == []  # nothing left to do: not even a load
    assert all(not f.trained_now and not f.predicted for f in again.folds)
    assert again.folds[0].train_s == pytest.approx(first.folds[0].train_s, abs=1e-3)


def test_a_crash_in_training_leaves_no_marker_and_the_rerun_trains_that_fold(dataset, tmp_path):
    work = tmp_path / "work"
    with pytest.raises(MethodFailed, match="Toy fold 1: fit failed: .*killed during training"):
        run_method(Toy(fail_fit_on_fold=1), dataset, "smoke", work, progress=False)
    method_dir = work / "models" / "Toy" / "smoke"
    assert (method_dir / "fold_0.done.json").is_file()
    assert not (method_dir / "fold_1.done.json").exists()
    toy = Toy()
    run_method(toy, dataset, "smoke", work, progress=False)
    assert [c for c in toy._calls if c[0] == "fit"] == [("fit", 1), ("fit", 2)]


def test_a_crash_while_writing_keeps_finished_cases_and_redoes_the_rest(
    dataset, tmp_path, monkeypatch
):
    import bench.runner.runner as runner

    work = tmp_path / "work"
    val = val_ids(dataset, 0)
    assert len(val) >= 2
    real_write_json = runner.write_json

    def dies_on_second_record(data, path):
        if path.name == f"{val[1]}.json":
            raise KeyboardInterrupt  # the process is killed between mask and record
        real_write_json(data, path)

    monkeypatch.setattr(runner, "write_json", dies_on_second_record)
    with pytest.raises(KeyboardInterrupt):
        run_method(Toy(), dataset, "smoke", work, folds=[0], progress=False)
    monkeypatch.setattr(runner, "write_json", real_write_json)
    predictions = work / "predictions" / "Toy" / "smoke"
    assert is_finished(predictions, val[0]) and not is_finished(predictions, val[1])
    assert (predictions / f"{val[1]}.nii.gz").is_file()  # written, but not trusted
    toy = Toy()
    result = run_method(toy, dataset, "smoke", work, folds=[0], progress=False)
    assert toy._calls == [("load", 0)]  # trained already: reloaded, not refitted
    assert result.folds[0].predicted == val[1:]
    assert result.folds[0].skipped == val[:1]


def test_a_fold_trained_under_other_profile_values_is_not_reused(dataset, tmp_path):
    from bench.profiles import get_profile

    run_method(Toy(), dataset, "smoke", tmp_path / "work", folds=[0], progress=False)
    changed = get_profile("smoke").with_overrides(epochs=3)  # same name, other values
    with pytest.raises(BenchError, match="trained with another 'smoke' profile"):
        run_method(Toy(), dataset, changed, tmp_path / "work", folds=[0], progress=False)
    reworded = get_profile("smoke").with_overrides(description="the same values, new words")
    toy = Toy()
    run_method(toy, dataset, reworded, tmp_path / "work", folds=[0], progress=False)
    assert ("fit", 0) not in toy._calls  # a description is not what the fold was trained with


def test_a_fold_the_split_lacks_is_an_error_before_any_work(dataset, tmp_path):
    with pytest.raises(BenchError, match="no fold 7"):
        run_method(Toy(), dataset, "smoke", tmp_path / "work", folds=[7], progress=False)
    assert not (tmp_path / "work").exists()


def test_a_workdir_of_another_dataset_is_refused(dataset, tmp_path):
    other = write_tiny_dataset(tmp_path / "other", n_patients=5, seed=3)
    claim_workdir(tmp_path / "work", other)
    with pytest.raises(BenchError, match="holds a run of dataset"):
        run_method(Toy(), dataset, "smoke", tmp_path / "work", progress=False)


def test_an_unknown_method_suggests_a_close_name(dataset, tmp_path):
    with pytest.raises(BenchError, match="did you mean 'nnunet3d'"):
        run_method("nnunet3dd", dataset, "smoke", tmp_path / "work", progress=False)


def test_fold_cases_hold_the_reference_labels_and_every_fold(dataset):
    from bench.splits import load_split

    split = load_split(dataset)
    cases = fold_cases(dataset, split, 1)
    assert all(c.label == dataset.case(c.id).labels["A"] for c in cases.train)
    assert [f.fold for f in cases.split] == [0, 1, 2]
    assert cases.fold_ids(1).val == tuple(c.id for c in cases.val)
    with pytest.raises(BenchError):
        cases.fold_ids(5)
    with pytest.raises(InputError):
        fold_cases(dataset, split, 5)
