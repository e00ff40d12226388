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
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.challenge.record import RECORD_FORMAT, RECORD_NAME, STATUSES
from bench.data.dataset import Dataset
from bench.errors import InputError, short_repr


@dataclass(frozen=True)
class ChallengeScore:
    results_path: Path
    text: str
    empty_cases: tuple[str, ...]


def read_record(predictions: Path, allow_weaker_isolation: bool = False) -> dict:
    """The record, checked field by field: it is read back from a folder others could edit."""
    from bench.io import read_json_object

    path = predictions / RECORD_NAME
    record = read_json_object(path, f"no {RECORD_NAME}: run `bench challenge predict` first")
    problem = record_problem(record)
    if problem:
        raise InputError(f"is not a valid challenge record ({RECORD_FORMAT}): {problem}", file=path)
    level = record.get("isolation", {}).get("level")
    if level != "full" and not allow_weaker_isolation:
        raise InputError(
            f"the predictions were made at isolation level {level!r}, not 'full': the submission "
            "may have read the labels (pass --allow-weaker-isolation to score them anyway)",
            file=path,
        )
    return record


def record_problem(record: dict) -> str:
    """What makes `record` unusable for scoring, or ""."""
    if record.get("format") != RECORD_FORMAT:
        return f"format is {short_repr(record.get('format'))}"
    for key in ("submission", "profile"):
        if not isinstance(record.get(key), str) or not record[key]:
            return f"{key} must be a non-empty string"
    if not isinstance(record.get("isolation"), dict):
        return "isolation must be an object"
    cases = record.get("cases")
    if not isinstance(cases, list) or not cases:
        return "cases must be a non-empty list"
    seen: set[str] = set()
    for index, case in enumerate(cases):
        if not isinstance(case, dict) or not isinstance(case.get("case"), str):
            return f"cases[{index}] must be an object with a string 'case'"
        if case["case"] in seen:
            return f"case {case['case']!r} is listed twice"
        seen.add(case["case"])
        if case.get("status") not in STATUSES:
            return f"cases[{index}].status must be one of {', '.join(STATUSES)}"
        if not _number_or_none(case.get("latency_s")):
            return f"cases[{index}].latency_s must be a number or null"
    attempts = record.get("attempts", [])
    if not isinstance(attempts, list) or not all(isinstance(a, dict) for a in attempts):
        return "attempts must be a list of objects"
    if not all(_number_or_none(a.get("peak_rss_mb")) for a in attempts):
        return "attempts[].peak_rss_mb must be a number or null"
    return ""


def _number_or_none(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


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
    dataset: Dataset,
    predictions: Path,
    out: Path | None = None,
    missing_as_empty: bool = False,
    allow_weaker_isolation: bool = False,
) -> ChallengeScore:
    """Score `predictions` (a `bench challenge predict` output folder) and write the results."""
    from tabulate import tabulate

    from bench.evaluate import score_study
    from bench.io import sha256_file
    from bench.recording import record_results
    from bench.stats.tables import table2

    predictions = Path(predictions)
    record = read_record(predictions, allow_weaker_isolation)
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
    run = {
        "split_sha256": cases_sha256(cases),
        "profile": f"challenge-{record['profile']}",
        "inference_seconds_per_case": latency,
        "peak_memory_mb": max(peaks) if peaks else None,
        "prediction_sha256": digests,
    }
    default_folder = Path("runs") / dataset.name / "challenge"
    results, path = record_results(
        per_case, name, dataset, run, default_folder, out, blame=predictions / RECORD_NAME
    )
    headers, rows = table2(results.stats)
    title = f"Table 2: {dataset.reference_rater} (reference) vs {name} on {len(cases)} case(s)"
    note = f"\n{len(empty)} case(s) without a prediction scored as empty masks" if empty else ""
    text = f"{title}\n{tabulate(rows, headers=headers)}{note}\nresults: {path}"
    return ChallengeScore(path, text, empty)
