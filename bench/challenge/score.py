"""`bench challenge score`: the blind predictions against the hidden labels, as a results file.

The cases are those of the challenge record (every image the submission was given), so a
case that failed cannot silently drop out of the scores: it is an error, unless the organiser
chooses to score missing cases as empty masks. Scoring is the harness's own (`score_study`,
`build_results`); the profile is recorded as `challenge-<profile>` so that the leaderboard
never ranks a test-set result next to a cross-validation one. The test set's hash stands in
for the split's (a challenge has no folds).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.challenge.record import RECORD_FORMAT, RECORD_NAME
from bench.data.dataset import Dataset
from bench.errors import InputError


@dataclass(frozen=True)
class ChallengeScore:
    results_path: Path
    text: str
    empty_cases: tuple[str, ...]


def read_record(predictions: Path) -> dict:
    path = predictions / RECORD_NAME
    if not path.is_file():
        raise InputError(f"no {RECORD_NAME}: run `bench challenge predict` first", file=predictions)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(f"is not valid JSON ({error})", file=path) from error
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        raise InputError(f"is not a challenge record ({RECORD_FORMAT})", file=path)
    return record


def cases_sha256(cases: list[str]) -> str:
    return hashlib.sha256(json.dumps(sorted(cases)).encode("utf-8")).hexdigest()


def _scoring_folder(
    dataset: Dataset, predictions: Path, cases: list[str], folder: Path, missing_as_empty: bool
) -> tuple[str, ...]:
    """Masks of `cases` in `folder`; empty masks for the missing ones when allowed."""
    from bench.io import read_geometry, write_image

    missing = [c for c in cases if not (predictions / f"{c}.nii.gz").is_file()]
    if missing and not missing_as_empty:
        raise InputError(
            f"{len(missing)} case(s) have no prediction (first: {missing[0]}); see "
            f"{RECORD_NAME}, or pass --missing-as-empty to score them as empty masks",
            file=predictions,
        )
    for case in cases:
        if case in missing:
            geometry = read_geometry(dataset.case(case).image, case)
            write_image(np.zeros(geometry.shape_zyx, np.uint8), geometry, folder / f"{case}.nii.gz")
        else:
            shutil.copyfile(predictions / f"{case}.nii.gz", folder / f"{case}.nii.gz")
    return tuple(missing)


def score_challenge(
    dataset: Dataset, predictions: Path, out: Path | None = None, missing_as_empty: bool = False
) -> ChallengeScore:
    """Score `predictions` (a `bench challenge predict` output folder) and write the results."""
    from tabulate import tabulate

    from bench.evaluate import score_study
    from bench.io import sha256_file
    from bench.pipeline import git_commit, hardware
    from bench.results import build_results, save_results
    from bench.stats import RaterRoles
    from bench.stats.tables import table2

    predictions = Path(predictions)
    record = read_record(predictions)
    cases = [str(c["case"]) for c in record["cases"]]
    known = {c.id for c in dataset.cases}
    unknown = [c for c in cases if c not in known]
    if unknown:
        raise InputError("the challenge record names a case the dataset lacks", unknown[0])
    name = str(record["submission"])
    with tempfile.TemporaryDirectory(prefix="bench-challenge-score-") as scratch:
        folder = Path(scratch) / "masks"
        folder.mkdir()
        empty = _scoring_folder(dataset, predictions, cases, folder, missing_as_empty)
        per_case = score_study(dataset, {name: folder}, cases=cases)
        digests = {case: sha256_file(folder / f"{case}.nii.gz") for case in cases}
    latency = {c["case"]: c["latency_s"] for c in record["cases"] if c.get("latency_s")}
    peaks = [a["peak_rss_mb"] for a in record.get("attempts", []) if a.get("peak_rss_mb")]
    metadata = {
        "dataset_name": dataset.name,
        "dataset_sha256": dataset.content_sha256,
        "split_sha256": cases_sha256(cases),
        "profile": f"challenge-{record['profile']}",
        "git_commit": git_commit(),
        "hardware": {k: str(v) for k, v in hardware().items()},
        "inference_seconds_per_case": latency,
        "peak_memory_mb": max(peaks) if peaks else None,
        "prediction_sha256": digests,
    }
    try:
        results = build_results(per_case, name, RaterRoles.from_dataset(dataset), metadata)
    except ValueError as error:  # a name the results schema refuses
        raise InputError(str(error), file=predictions / RECORD_NAME) from error
    default = Path("runs") / dataset.name / "challenge" / f"{results.stem}.json"
    path = save_results(results, Path(out) if out else default)
    headers, rows = table2(results.stats)
    title = f"Table 2: {dataset.reference_rater} (reference) vs {name} on {len(cases)} case(s)"
    note = f"\n{len(empty)} case(s) without a prediction scored as empty masks" if empty else ""
    text = f"{title}\n{tabulate(rows, headers=headers)}{note}\nresults: {path}"
    return ChallengeScore(path, text, empty)
