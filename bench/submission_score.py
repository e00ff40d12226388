"""Scoring a predictions-only submission: masks made elsewhere, scored like `bench run`'s.

The folder must hold exactly one `<case>.nii.gz` mask per validation case of the dataset's
split (every fold), each on its image's exact grid; `probabilities/<case>.nii.gz` is optional
and checked the same way. The scores and the results file are the same as for a method the
harness trained (`bench.evaluate`, `bench.results`); the profile is recorded as `submitted`
unless the manifest names one, so the leaderboard never ranks it next to another profile.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

from bench.data.dataset import Dataset
from bench.errors import BenchError, InputError

DEFAULT_PROFILE = "submitted"


@dataclass(frozen=True)
class ScoreOutcome:
    results_path: Path
    text: str


def check_plain_files(submission: Path, folder: Path) -> None:
    """The predictions folder lies inside the submission and holds files of its own: a
    symlink or a hard link could hand in a file the submission never made (a label)."""
    if folder.is_symlink() or not folder.resolve().is_relative_to(Path(submission).resolve()):
        raise InputError("the predictions folder must lie inside the submission", file=folder)
    for sub in (folder, folder / "probabilities"):
        if sub.is_symlink():
            raise InputError("is a symbolic link: keep the files themselves here", file=sub)
        if not sub.is_dir():
            continue
        for entry in sorted(sub.iterdir()):
            info = entry.lstat()
            if stat.S_ISLNK(info.st_mode):
                raise InputError("is a symbolic link: submit the mask itself", file=entry)
            if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
                raise InputError(
                    f"is a hard link ({info.st_nlink} names): submit a copy of its own",
                    file=entry,
                )


def check_predictions(dataset: Dataset, folder: Path, case_ids: list[str]) -> None:
    """Coverage (missing, extra cases) and geometry of every mask and optional probability."""
    from bench.evaluate.loading import nifti_files
    from bench.evaluate.study import prediction_files
    from bench.io import read_geometry

    files = prediction_files(folder, case_ids, expected="a validation case")
    probabilities = folder / "probabilities"
    optional = nifti_files(probabilities) if probabilities.is_dir() else {}
    for name, path in optional.items():
        if name not in files:
            raise InputError("probability for a case that is not a validation case", name, path)
    for case in case_ids:
        image = read_geometry(dataset.case(case).image, case)
        for path in (files[case], optional.get(case)):
            if path is None:
                continue
            problem = image.mismatch(read_geometry(path, case), "prediction")
            if problem:
                raise InputError(problem, case, path)


def score_predictions(submission: Path, dataset: Dataset, out_dir: Path) -> ScoreOutcome:
    """Validate, score and write the results file `out_dir/results/<stem>.json`."""
    from tabulate import tabulate

    from bench.evaluate import score_study
    from bench.io import sha256_file
    from bench.provenance import hardware
    from bench.recording import record_results
    from bench.splits import load_split
    from bench.stats.tables import table2
    from bench.submissions import validate_manifest

    manifest = validate_manifest(Path(submission))
    if manifest.kind != "predictions":
        raise BenchError(
            f"{submission}: kind is {manifest.kind!r}; `bench score` takes a predictions "
            f"submission (train an adapter with `bench run --method {manifest.name}`)"
        )
    folder = Path(submission) / manifest.entry
    if not folder.is_dir():
        raise InputError(f"entry {manifest.entry!r} is not a folder of predictions", file=folder)
    split = load_split(dataset)
    validated = split.validated_cases()
    check_plain_files(Path(submission), folder)
    check_predictions(dataset, folder, validated)
    per_case = score_study(  # only the validated cases: extra scans are never predicted
        dataset,
        {manifest.name: folder},
        cache_dir=Path(out_dir) / "scores" / manifest.name,
        cases=validated,
    )
    run = {
        "split_sha256": split.split_sha256,
        "profile": str(manifest.extra.get("profile", DEFAULT_PROFILE)),
        "adapter_version": str(manifest.extra.get("version", "1")),
        # The masks were made elsewhere: this machine only scored them.
        "hardware": {"device": "n/a (submitted)", "scored_on": hardware()["device"]},
        "prediction_sha256": {case: sha256_file(folder / f"{case}.nii.gz") for case in validated},
    }
    results, path = record_results(
        per_case,
        manifest.name,
        dataset,
        run,
        folder=Path(out_dir) / "results",
        blame=Path(submission) / "submission.toml",
    )
    headers, rows = table2(results.stats)
    title = f"Table 2: {dataset.reference_rater} (reference) vs {manifest.name}"
    return ScoreOutcome(path, f"{title}\n{tabulate(rows, headers=headers)}\nresults: {path}")
