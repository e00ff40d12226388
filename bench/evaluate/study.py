"""Score a whole study: every pair a case needs, each mask decoded and prepared once.

A study is a dataset (raters, maybe the phantom's `truth`) plus prediction folders (one per
method). Every rater and `truth` serves as a reference; every rater and method is scored
against each of them, so one run holds what Table 2, Table 3 and the image-level analysis
read. Cases run in parallel processes (both cores by default); each finished case is cached
at once, so an interrupted or failed run loses nothing already scored.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from bench.data.dataset import Dataset
from bench.errors import InputError
from bench.evaluate.cache import CaseCache, case_key
from bench.evaluate.loading import check_grid, nifti_files, read_mask
from bench.evaluate.masks import PreparedMask, check_spacing, prepare_masks
from bench.evaluate.pair import Compat, as_bool, score_pairs
from bench.io import Geometry, read_geometry
from bench.metric_names import PER_CASE_COLUMNS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """What changes the numbers (and so the cache key)."""

    small_ml: float = 0.0
    compat: str = Compat.OFF.value
    same_grid: bool = False  # masks on the grid of record whatever their origin and direction


@dataclass(frozen=True)
class CaseJob:
    """One case: its mask files by name, the (reference, test) pairs, the grid of record."""

    case: str
    masks: dict[str, Path]
    pairs: tuple[tuple[str, str], ...]
    grid_file: Path | None = None  # every mask must match its header; None: the first mask
    grid_name: str = "reference"


@dataclass
class CaseResult:
    case: str
    rows: list[dict[str, Any]]
    decode_s: float = 0.0
    metric_s: float = 0.0
    cached: bool = False


@dataclass
class StudyTiming:
    """Where the time went: decoding NIfTI versus computing metrics (summed over workers)."""

    cases: int = 0
    cached: int = 0
    pairs: int = 0
    decode_s: float = 0.0
    metric_s: float = 0.0
    wall_s: float = 0.0
    workers: int = 1
    extra: dict[str, float] = field(default_factory=dict)


def score_case(job: CaseJob, settings: Settings) -> CaseResult:
    """Decode every mask of a case once, prepare it once, score every pair."""
    started = time.perf_counter()
    arrays: dict[str, Any] = {}
    grid: Geometry | None = None
    if job.grid_file is not None:
        grid = read_geometry(job.grid_file, job.case)
    for name, path in job.masks.items():
        array, geometry = read_mask(path, job.case)
        if grid is None:
            grid = geometry
        else:
            check_grid(grid, geometry, job.grid_name, job.case, path, settings.same_grid)
        spacing = grid.spacing_zyx_mm if settings.same_grid else geometry.spacing_zyx_mm
        spacing = check_spacing(spacing, job.case, path)
        arrays[name] = (as_bool(array), spacing)
    decoded = time.perf_counter()
    prepared = _prepare_all(arrays)
    arrays.clear()
    scored = score_pairs(prepared, job.pairs, settings.small_ml, settings.compat)
    rows = [
        {"case": job.case, "reference": reference, "test": test, **metrics.as_dict()}
        for (reference, test), metrics in zip(job.pairs, scored, strict=True)
    ]
    return CaseResult(job.case, rows, decoded - started, time.perf_counter() - decoded)


def _prepare_all(
    arrays: dict[str, tuple[Any, tuple[float, float, float]]],
) -> dict[str, PreparedMask]:
    """Every mask of a case prepared once; masks on one spacing share their scans."""
    by_spacing: dict[tuple[float, float, float], list[str]] = {}
    for name, (_, spacing) in arrays.items():
        by_spacing.setdefault(spacing, []).append(name)
    prepared: dict[str, PreparedMask] = {}
    for spacing, names in by_spacing.items():
        masks = prepare_masks([arrays[name][0] for name in names], spacing)
        prepared.update(zip(names, masks, strict=True))
    return prepared


def _cache_settings(settings: Settings, job: CaseJob) -> dict[str, Any]:
    values = asdict(settings)
    if not settings.same_grid:  # keys of caches written before the option stay valid
        del values["same_grid"]
    return {**values, "pairs": [list(p) for p in job.pairs]}


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def run_jobs(
    jobs: Sequence[CaseJob],
    settings: Settings,
    cache_dir: Path | None = None,
    workers: int | None = None,
) -> pd.DataFrame:
    """Score the jobs (cached ones from the cache) into a per-case table in job order.

    The table's `attrs["timing"]` holds a StudyTiming as a dict.
    """
    started = time.perf_counter()
    workers = default_workers() if workers is None else max(1, int(workers))
    cache = CaseCache(cache_dir)
    keys = {job.case: case_key(job.masks.values(), _cache_settings(settings, job)) for job in jobs}
    results: dict[str, CaseResult] = {}
    todo = []
    for job in jobs:
        rows = cache.load(job.case, keys[job.case])
        if rows is None:
            todo.append(job)
        else:
            results[job.case] = CaseResult(job.case, rows, cached=True)
    timing = StudyTiming(cases=len(jobs), cached=len(results), workers=workers)

    def finish(result: CaseResult) -> None:
        cache.store(result.case, keys[result.case], result.rows)
        results[result.case] = result
        timing.decode_s += result.decode_s
        timing.metric_s += result.metric_s

    with tqdm(total=len(todo), desc="scoring cases", unit="case", disable=None) as progress:
        if workers == 1 or len(todo) <= 1:
            for job in todo:
                finish(score_case(job, settings))
                progress.update()
        else:
            _run_parallel(todo, settings, workers, finish, progress)

    rows = [row for job in jobs for row in results[job.case].rows]
    table = pd.DataFrame(rows, columns=list(PER_CASE_COLUMNS))
    table["nan_reason"] = table["nan_reason"].fillna("").astype(str)
    timing.pairs = len(table)
    timing.wall_s = time.perf_counter() - started
    table.attrs["timing"] = asdict(timing)
    log.info(
        "scored %d pairs of %d cases (%d from cache) in %.1f s: decoding %.1f s, metrics %.1f s",
        timing.pairs,
        timing.cases,
        timing.cached,
        timing.wall_s,
        timing.decode_s,
        timing.metric_s,
    )
    return table


def _run_parallel(todo, settings, workers, finish, progress) -> None:
    """Cases in worker processes; the first failure stops the rest, finished cases are kept."""
    with ProcessPoolExecutor(max_workers=min(workers, len(todo))) as pool:
        pending = {pool.submit(score_case, job, settings) for job in todo}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            failed = None
            for future in done:
                if future.exception() is None:
                    finish(future.result())
                    progress.update()
                elif failed is None:
                    failed = future.exception()
            if failed is not None:
                for future in pending:
                    future.cancel()
                # Keep what the running workers finish before giving up.
                for future in wait(pending).done:
                    if not future.cancelled() and future.exception() is None:
                        finish(future.result())
                raise failed


def study_pairs(
    raters: Sequence[str], truth: str | None, methods: Sequence[str]
) -> tuple[tuple[str, str], ...]:
    """Every (reference, test): each rater and `truth` as reference, raters and methods as tests."""
    references = [*raters, truth] if truth else list(raters)
    tests = [*raters, *methods]
    return tuple((r, t) for r in references for t in tests if t != r)


def prediction_files(
    folder: Path, case_ids: Sequence[str], expected: str = "in the dataset"
) -> dict[str, Path]:
    """One NIfTI per case id in `folder`; a missing or an extra case is an InputError."""
    files = nifti_files(folder)
    wanted = set(case_ids)
    for name, path in files.items():
        if name not in wanted:
            raise InputError(f"prediction for a case that is not {expected}", name, path)
    for case in case_ids:
        if case not in files:
            raise InputError("no prediction for this case", case, folder / f"{case}.nii.gz")
    return files


def score_study(
    dataset: Dataset,
    predictions: Mapping[str, str | Path] | None = None,
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    small_ml: float = 0.0,
    compat: Compat | str = Compat.OFF,
    cases: Sequence[str] | None = None,
    same_grid: bool = False,
) -> pd.DataFrame:
    """Per-case metrics of every study pair: columns `bench.metric_names.PER_CASE_COLUMNS`.

    `predictions` maps a method name to a folder of `<case>.nii.gz` masks on the cases'
    grids (the method name becomes the `test` value). `cases` restricts the cases scored
    (a prediction for any other case is an error). `same_grid`: masks whose origin or
    direction differ from the image's are scored on the image's header (shape and spacing
    must match).
    """
    methods = {name: Path(folder) for name, folder in (predictions or {}).items()}
    clash = set(methods) & set(dataset.label_sets)
    if clash:
        raise InputError(f"method name {sorted(clash)[0]!r} is also a rater name")
    selected = [c for c in dataset.cases if cases is None or c.id in set(cases)]
    if cases is not None:
        unknown = sorted(set(cases) - {c.id for c in selected})
        if unknown:
            raise InputError("no such case in the dataset", unknown[0], dataset.root)
    expected = "in the dataset" if cases is None else "among the cases to score"
    files = {
        name: prediction_files(folder, [c.id for c in selected], expected)
        for name, folder in methods.items()
    }
    pairs = study_pairs(dataset.raters, dataset.truth, list(methods))
    jobs = [
        CaseJob(
            case=case.id,
            masks={
                **{name: case.labels[name] for name in dataset.label_sets},
                **{name: files[name][case.id] for name in methods},
            },
            pairs=pairs,
            grid_file=case.image,
            grid_name="image",
        )
        for case in selected
    ]
    settings = Settings(float(small_ml), Compat(compat).value, bool(same_grid))
    return run_jobs(jobs, settings, Path(cache_dir) if cache_dir else None, workers)


def score_folders(
    reference_dir: str | Path,
    test_dir: str | Path,
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    small_ml: float = 0.0,
    compat: Compat | str = Compat.OFF,
    same_grid: bool = False,
) -> pd.DataFrame:
    """Score two folders of NIfTI masks with matching names (the published evaluator's input).

    `reference` and `test` in the table are the folders' names. `same_grid`: a test mask
    whose origin or direction differ from its reference's is scored on the reference's header.
    """
    reference_dir, test_dir = Path(reference_dir), Path(test_dir)
    references, tests = nifti_files(reference_dir), nifti_files(test_dir)
    for name, path in tests.items():
        if name not in references:
            raise InputError(f"has no reference in {reference_dir}", name, path)
    for name, path in references.items():
        if name not in tests:
            raise InputError(f"has no test in {test_dir}", name, path)
    if not references:
        raise InputError("holds no NIfTI masks (.nii.gz or .nii)", file=reference_dir)
    ref_name, test_name = reference_dir.resolve().name, test_dir.resolve().name
    if ref_name == test_name:
        ref_name, test_name = "reference", "test"
    jobs = [
        CaseJob(
            case=name,
            masks={ref_name: references[name], test_name: tests[name]},
            pairs=((ref_name, test_name),),
        )
        for name in sorted(references)
    ]
    settings = Settings(float(small_ml), Compat(compat).value, bool(same_grid))
    return run_jobs(jobs, settings, Path(cache_dir) if cache_dir else None, workers)
