"""`bench run`'s pipeline for one method: per fold, fit (unless finished) and predict every
validation case through the common runner (unless predicted); then hand the predictions on.

Work directory layout (one per dataset; `workspace.json` proves which):

    <workdir>/workspace.json                          dataset name and content hash
    <workdir>/cache/                                  derived channels (the mirror), per case
    <workdir>/models/<method>/<profile>/              the method's own folder (all folds)
    <workdir>/models/<method>/<profile>/fold_<k>.done.json   marker: the fold is trained
    <workdir>/models/<method>/<profile>/fold_<k>.postprocessing.json   the fold's choice
    <workdir>/holdout/<method>/<profile>/fold_<k>/    predictions of the inner hold-out
    <workdir>/predictions/<method>/<profile>/<case>.nii.gz   masks (uint8), the image's grid
        .../probabilities/<case>.nii.gz               lesion probability (float32)
        .../records/<case>.json                       per-case latency and memory

A fold's marker is written atomically after `fit` returns, so a crash during training leaves
no marker and the next run calls `fit` again (which continues from the method's checkpoints).

The unit of work is a `Unit` (method, fold): `run_method(..., folds=[fold])` in any process
that sees the work directory; `bench.executors` runs units elsewhere, and the workdir alone
carries their results back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.adapter import FoldCases, FoldIds, LabelledCase, MethodAdapter, Predictor
from bench.data.dataset import Dataset
from bench.errors import BenchError, MethodFailed
from bench.io import remove_stale_temporaries, write_json
from bench.predictions import is_finished, output_paths
from bench.profiles import Profile, get_profile

if TYPE_CHECKING:
    from bench.splits import Split

log = logging.getLogger(__name__)

WORKSPACE_FILE = "workspace.json"


@dataclass(frozen=True)
class RunLayout:
    """Where a run keeps everything (see the module docstring)."""

    root: Path
    method: str
    profile: str

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def method_dir(self) -> Path:
        return self.root / "models" / self.method / self.profile

    @property
    def predictions_dir(self) -> Path:
        return self.root / "predictions" / self.method / self.profile

    def fold_marker(self, fold: int) -> Path:
        return self.method_dir / f"fold_{fold}.done.json"

    def postprocessing_file(self, fold: int) -> Path:
        from bench.runner.postprocess import choice_file

        return choice_file(self.method_dir, fold)

    def holdout_dir(self, fold: int) -> Path:
        return self.root / "holdout" / self.method / self.profile / f"fold_{fold}"

    @property
    def scores_dir(self) -> Path:
        """The evaluator's per-case cache of this method and profile."""
        return self.root / "scores" / self.method / self.profile

    @property
    def results_dir(self) -> Path:
        return self.root / "results"


@dataclass
class FoldResult:
    fold: int
    trained_now: bool
    train_s: float | None  # from the marker when the fold was trained in an earlier run
    predicted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    inference_wall_s: float = 0.0
    records: list[dict[str, Any]] = field(default_factory=list)
    postprocessing: dict[str, Any] | None = None  # the fold's choice (`Choice.to_json`)


@dataclass
class RunResult:
    method: str
    profile: Profile
    layout: RunLayout
    folds: list[FoldResult]
    wall_s: float


def claim_workdir(workdir: Path, dataset: Dataset) -> None:
    """Tie `workdir` to `dataset`; a workdir made for another dataset is an error."""
    if not check_workdir(workdir, dataset):
        mine = {"dataset_name": dataset.name, "dataset_sha256": dataset.content_sha256}
        write_json(mine, Path(workdir) / WORKSPACE_FILE)


def check_workdir(workdir: Path, dataset: Dataset) -> bool:
    """Whether `workdir` is claimed already (by `dataset`; another dataset's is an error)."""
    path = Path(workdir) / WORKSPACE_FILE
    if not path.is_file():
        return False
    theirs = json.loads(path.read_text(encoding="utf-8"))
    if theirs.get("dataset_sha256") != dataset.content_sha256:
        raise BenchError(
            f"{workdir} holds a run of dataset {theirs.get('dataset_name')!r} "
            f"({str(theirs.get('dataset_sha256'))[:12]}), not {dataset.name!r} "
            f"({str(dataset.content_sha256)[:12]}): choose another --workdir"
        )
    return True


@dataclass(frozen=True)
class Unit:
    """One (method, fold): train the fold, then predict its validation cases.

    Units of a run share nothing but the work directory, so each can run in its own process
    or on another machine (`bench.executors`).
    """

    method: str
    fold: int

    def __str__(self) -> str:
        return f"{self.method} fold {self.fold}"


def plan_units(
    methods: Sequence[str], split: Split, folds: Sequence[int] | None = None
) -> list[Unit]:
    """The units of a run, method by method; a fold the split lacks is an error."""
    folds = checked_folds(split, folds)
    return [Unit(method, fold) for method in methods for fold in folds]


def checked_folds(split: Split, folds: Sequence[int] | None) -> list[int]:
    all_folds = [f.fold for f in split.folds]
    folds = list(all_folds if folds is None else folds)
    unknown = sorted(set(folds) - set(all_folds))
    if unknown:
        raise BenchError(f"the split has no fold {unknown[0]} (folds {all_folds})")
    return folds


@dataclass(frozen=True)
class UnitStatus:
    """What is left of a unit, read from the work directory alone (no torch, no method code)."""

    unit: Unit
    trained: bool
    predicted: tuple[str, ...]
    to_predict: tuple[str, ...]


def unit_status(unit: Unit, split: Split, workdir: Path, profile: str) -> UnitStatus:
    layout = RunLayout(Path(workdir), unit.method, profile)
    val = split.fold_ids(unit.fold).val
    done = tuple(c for c in val if is_finished(layout.predictions_dir, c))
    todo = tuple(c for c in val if c not in done)
    return UnitStatus(unit, layout.fold_marker(unit.fold).is_file(), done, todo)


def holdout_ids(split: Split, fold: int, share: float) -> tuple[str, ...]:
    """The first scans of about `share` of the fold's training patients, held out from
    training to choose the fold's postprocessing on (`bench.runner.postprocess`).

    Stratified like the split (lesion-free, small, large): each stratum's training cases are
    shuffled by the split's seed and the fold, then every 1/share-th case of that order is
    taken, so a hold-out of 20 % of 32 cases holds each stratum in proportion.
    """
    import numpy as np

    from bench.splits import STRATA

    if share <= 0:
        return ()
    train = sorted(split.fold_ids(fold).train)
    rng = np.random.default_rng([split.seed, fold, 17])
    order: list[str] = []
    for stratum in (*STRATA, None):
        members = [c for c in train if split.strata.get(c) == stratum]
        order += [members[i] for i in rng.permutation(len(members))]
    step = max(1, round(1.0 / share))
    return tuple(sorted(order[step // 2 :: step]))


def fold_cases(
    dataset: Dataset,
    split: Split,
    fold: int,
    cache_dir: Path | None = None,
    holdout_share: float = 0.0,
) -> FoldCases:
    """The plain-data view of one fold that `MethodAdapter.fit` receives.

    With a `holdout_share`, every fold's training cases lack its inner hold-out (and the
    held-out patients' additional scans), in `train` as in `split`, so that a method that
    prepares all folds at once (nnU-Net) never trains on them either; `holdouts` names them,
    for a method that selects a checkpoint or stops early (never on `val`).
    """
    reference = dataset.reference_rater
    every = {
        case.id: LabelledCase(case.id, case.patient, case.image, case.labels[reference])
        for case in dataset.cases
    }
    holdouts = {f.fold: holdout_ids(split, f.fold, holdout_share) for f in split.folds}

    def without_holdout(ids: FoldIds) -> FoldIds:
        held = set(holdouts[ids.fold])
        patients = {every[i].patient for i in held}
        return FoldIds(
            ids.fold,
            tuple(i for i in ids.train if i not in held),
            tuple(i for i in ids.train_additional if every[i].patient not in patients),
            ids.val,
        )

    folds = tuple(without_holdout(f) for f in split.folds)
    mine = without_holdout(split.fold_ids(fold))  # a fold the split lacks: InputError
    return FoldCases(
        fold=fold,
        train=tuple(every[i] for i in mine.train),
        train_additional=tuple(every[i] for i in mine.train_additional),
        val=tuple(every[i] for i in mine.val),
        split=folds,
        holdouts=tuple(holdouts[f.fold] for f in folds) if holdout_share > 0 else (),
        all_cases=every,
        dataset_sha256=dataset.content_sha256,
        cache_dir=cache_dir,
    )


def run_method(
    method: str | MethodAdapter,
    dataset: Dataset,
    profile: str | Profile,
    workdir: Path,
    folds: Sequence[int] | None = None,
    split: Split | None = None,
    progress: bool = True,
    device: str | None = None,
) -> RunResult:
    """Fit and predict `folds` (default: all) of `method`; finished parts are skipped."""
    from bench.runner import CaseInput, InferenceSettings, predict_cases
    from bench.splits import load_split

    profile = get_profile(profile)
    adapter, name = _adapter(method)
    split = load_split(dataset) if split is None else split
    folds = checked_folds(split, folds)
    claim_workdir(workdir, dataset)
    layout = RunLayout(Path(workdir), name, profile.name)
    settings = InferenceSettings.from_profile(profile, device=device)
    started = time.perf_counter()
    results = []
    for fold in folds:
        cases = fold_cases(dataset, split, fold, layout.cache_dir, profile.postprocess_holdout)
        with _method_code(name, fold, "fit"):
            result, predictor = _fit_or_load(adapter, cases, layout, profile, name)
        inputs = [CaseInput(c.id, c.image) for c in cases.val]
        holdout = profile.postprocess_holdout
        choose_now = holdout > 0 and not layout.postprocessing_file(fold).is_file()
        to_predict = any(not is_finished(layout.predictions_dir, c.id) for c in inputs)
        if predictor is None and (to_predict or choose_now):
            with _method_code(name, fold, "load"):
                predictor = adapter.load(layout.method_dir, fold, profile)
        fold_settings = settings
        if profile.postprocess_holdout > 0:
            from bench.runner.postprocess import load_choice

            if choose_now:
                held = [cases.all_cases[i] for i in cases.holdout(fold)]
                with _method_code(name, fold, "predict"):
                    choose_postprocessing(predictor, held, layout, fold, profile, settings)
            choice = load_choice(layout.postprocessing_file(fold))
            result.postprocessing = choice.to_json()
            fold_settings = replace(settings, postprocessing=choice.postprocessing)
        if predictor is not None:
            with _method_code(name, fold, "predict"):
                summary = predict_cases(
                    predictor,
                    inputs,
                    layout.predictions_dir,
                    fold_settings,
                    layout.cache_dir,
                    progress,
                )
            result.predicted = [r.case for r in summary.records]
            result.skipped = summary.skipped
            result.inference_wall_s = summary.wall_s
        else:
            result.skipped = [c.id for c in inputs]
        result.records = _records(layout.predictions_dir, [c.id for c in inputs])
        results.append(result)
        log.info(
            "fold %d: %s, %d case(s) predicted, %d already done",
            fold,
            "trained" if result.trained_now else "already trained",
            len(result.predicted),
            len(result.skipped),
        )
    return RunResult(name, profile, layout, results, time.perf_counter() - started)


def choose_postprocessing(
    predictor: Predictor,
    held: Sequence[LabelledCase],
    layout: RunLayout,
    fold: int,
    profile: Profile,
    settings: Any,
) -> None:
    """Predict the fold's inner hold-out through the common runner, choose the mask rule
    with the best mean Dice against the reference rater there, and record it."""
    import numpy as np

    from bench.io import read_image
    from bench.runner import CaseInput, predict_cases
    from bench.runner.postprocess import (
        HoldoutCase,
        Postprocessing,
        candidates,
        choose,
        save_choice,
    )

    if not held:
        raise BenchError(f"fold {fold}: the postprocessing hold-out is empty")
    out = layout.holdout_dir(fold)
    inputs = [CaseInput(c.id, c.image) for c in held]
    predict_cases(predictor, inputs, out, settings, layout.cache_dir, progress=False)
    cases = []
    for case in held:
        probability = read_image(output_paths(out, case.id).probability, case.id)[0]
        image, geometry = read_image(case.image, case.id)
        reference = read_image(case.label, case.id)[0] > 0
        cases.append(
            HoldoutCase(
                case.id, probability, reference, image.astype(np.float32), geometry.voxel_volume_ml
            )
        )
    options = candidates(
        profile.postprocess_thresholds or (profile.threshold,),
        profile.postprocess_min_component_ml,
        profile.postprocess_intracranial,
    )
    choice = choose(cases, options, Postprocessing(threshold=profile.threshold))
    save_choice(choice, layout.postprocessing_file(fold))
    log.info(
        "fold %d: postprocessing %s (hold-out Dice %.3f, plain %.3f, %d case(s))",
        fold,
        choice.postprocessing.describe(),
        choice.dice,
        choice.plain_dice,
        len(held),
    )


@contextlib.contextmanager
def _method_code(name: str, fold: int, stage: str) -> Iterator[None]:
    """Turn an exception from a method's own code into one line (`MethodFailed`).

    Errors about the user's input (`BenchError`) and interrupts pass through unchanged.
    """
    try:
        yield
    except BenchError:
        raise
    except Exception as error:
        first_line = next(iter(str(error).splitlines()), "")
        raise MethodFailed(
            f"method {name} fold {fold}: {stage} failed: {type(error).__name__}: {first_line}"
        ) from error


def _adapter(method: str | MethodAdapter) -> tuple[MethodAdapter, str]:
    if isinstance(method, MethodAdapter):
        return method, type(method).__name__
    from bench.registry import methods

    return methods().get(method)(), method


def _trained_with(profile: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The profile fields a trained fold depends on, as JSON would give them back: all but
    the description, which is documentation (rewording it must not retrain anything)."""
    if profile is None:
        return None
    return json.loads(json.dumps({k: v for k, v in profile.items() if k != "description"}))


def _fit_or_load(
    adapter: MethodAdapter, cases: FoldCases, layout: RunLayout, profile: Profile, name: str
) -> tuple[FoldResult, Predictor | None]:
    marker = layout.fold_marker(cases.fold)
    if marker.is_file():
        done = json.loads(marker.read_text(encoding="utf-8"))
        now = {"profile": _trained_with(profile.to_dict()), "version": adapter.version}
        then = {
            "profile": _trained_with(done.get("profile")),
            "version": done.get("adapter_version"),
        }
        if now != then:
            raise BenchError(
                f"fold {cases.fold} of {name} in {layout.method_dir} was trained with another "
                f"'{profile.name}' profile or adapter version; delete that folder to retrain"
            )
        return FoldResult(cases.fold, False, done.get("train_s")), None
    layout.method_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    from bench.runner.threads import advise, cpu_threads

    # Every method trains with the profile's torch threads (the harness's choice, not the
    # adapter's): CPU results differ between thread counts, so a probe only advises.
    advise(profile.threads)
    with cpu_threads(profile.threads):
        predictor = adapter.fit(cases, cases.fold, layout.method_dir, profile)
    train_s = time.perf_counter() - started
    remove_stale_temporaries(marker.parent, marker.name)  # a killed run's
    write_json(
        {
            "method": name,
            "adapter_version": adapter.version,
            "settings": {k: repr(v) for k, v in adapter.settings().items()},
            "profile": profile.to_dict(),
            "fold": cases.fold,
            "train_s": round(train_s, 3),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "predictor": predictor.metadata,
        },
        marker,
    )
    return FoldResult(cases.fold, True, train_s), predictor


def _records(predictions_dir: Path, case_ids: Sequence[str]) -> list[dict[str, Any]]:

    records = []
    for case_id in case_ids:
        path = output_paths(predictions_dir, case_id).record
        if path.is_file():
            records.append(json.loads(path.read_text(encoding="utf-8")))
    return records


@dataclass
class ScoreReport:
    per_case: Any  # pandas.DataFrame with bench.metric_names.PER_CASE_COLUMNS
    results_path: Path | None  # written only when every fold's cases are predicted
    text: str


def score_run(result: RunResult, dataset: Dataset, split: Split) -> ScoreReport:
    """Score every finished prediction against every rater; with all folds done, the study.

    The evaluator (`bench.evaluate.score_study`) caches per-case scores under
    `<workdir>/scores/`; the results file (`bench.results`) goes to `<workdir>/results/`.
    """

    from bench.evaluate import score_study

    layout = result.layout
    predicted = [c.id for c in dataset.cases if is_finished(layout.predictions_dir, c.id)]
    remove_stale_temporaries(layout.scores_dir)  # a killed run's; scoring is this process's
    per_case = score_study(
        dataset,
        {result.method: layout.predictions_dir},
        cache_dir=layout.scores_dir,
        cases=predicted,
    )
    validated = set(split.validated_cases())
    missing = sorted(validated - set(predicted))
    if missing:
        text = (
            f"scored {len(predicted)} case(s); the study and the results file need every fold "
            f"({len(missing)} validation case(s) not predicted yet, e.g. {missing[0]})"
        )
        return ScoreReport(per_case, None, text)
    from bench.recording import record_results
    from bench.stats.tables import study_report

    table = per_case[per_case["case"].isin(validated)]
    run = _run_metadata(result, split, sorted(validated))
    run["calibration"] = _calibration(dataset, layout.predictions_dir, sorted(validated))
    results, path = record_results(table, result.method, dataset, run, layout.results_dir)
    report = study_report(results.stats, result.method, dataset.reference_rater)
    return ScoreReport(per_case, path, f"{report}\n\nresults: {path}")


def _calibration(dataset: Dataset, predictions: Path, cases: list[str]) -> dict[str, Any]:
    """The probability maps' calibration (`bench.evaluate.calibration`); {} without maps."""
    from bench.evaluate.calibration import dataset_calibration
    from bench.results import to_json

    return {k: to_json(v) for k, v in dataset_calibration(dataset, predictions, cases).items()}


def _run_metadata(result: RunResult, split: Split, validated: list[str]) -> dict[str, Any]:
    """What only `bench run` knows of its results: timing, hashes, choices, curves."""
    from bench.io import sha256_file
    from bench.provenance import hardware
    from bench.runner.threads import resolved_threads

    records = {r["case"]: r for r in _records(result.layout.predictions_dir, validated)}
    train, curves, postprocessing = {}, {}, {}
    for fold in split.folds:
        k = fold.fold
        marker = result.layout.fold_marker(k)
        if marker.is_file():
            done = json.loads(marker.read_text(encoding="utf-8"))
            train[str(k)] = done["train_s"]
            curve = (done.get("predictor") or {}).get("curves")
            if curve:
                curves[str(k)] = curve
        choice = result.layout.postprocessing_file(k)
        if choice.is_file():
            postprocessing[str(k)] = json.loads(choice.read_text(encoding="utf-8"))
    peak = [r["peak_device_mb"] or r["peak_rss_mb"] for r in records.values()]
    return {
        "split_sha256": split.split_sha256,
        "profile": result.profile.name,
        "seed": result.profile.seed,
        "adapter_version": _adapter(result.method)[0].version,
        "hardware": {
            **hardware(),
            "torch_threads": str(resolved_threads(result.profile.threads)),
        },
        "train_seconds_per_fold": train,
        "inference_seconds_per_case": {c: r["latency_s"] for c, r in records.items()},
        "peak_memory_mb": max(peak) if peak else None,
        "prediction_sha256": {
            c: sha256_file(output_paths(result.layout.predictions_dir, c).mask) for c in validated
        },
        "postprocessing": postprocessing,
        "training_curves": curves,
    }
