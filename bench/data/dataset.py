"""Dataset format v1: `dataset.json` + NIfTI images and per-rater labels (see DESIGN.md).

Loading checks the manifest's structure (cheap, no pixels); `validate_dataset` also reads
every file and reports every problem, one line each, so a user fixes them all in one pass.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import InputError, Problem, ValidationError

FORMAT_VERSION = 1
MANIFEST_NAME = "dataset.json"
SPLITS_NAME = "splits.json"
REQUIRED_FIELDS = ("name", "format_version", "modality", "raters", "reference_rater", "cases")
REQUIRED_CASE_FIELDS = ("id", "patient", "scan_index", "image", "labels")


@dataclass(frozen=True)
class Case:
    id: str
    patient: str
    scan_index: int
    image: Path
    labels: dict[str, Path]
    laterality: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Dataset:
    root: Path
    name: str
    raters: tuple[str, ...]
    reference_rater: str
    truth: str | None
    cases: tuple[Case, ...]
    content_sha256: str | None
    manifest: dict[str, Any]

    @property
    def label_sets(self) -> tuple[str, ...]:
        """Every rater plus the hidden truth where the dataset has one (the phantom)."""
        return (*self.raters, self.truth) if self.truth else self.raters

    @property
    def independent_raters(self) -> tuple[str, ...]:
        return tuple(r for r in self.raters if r != self.reference_rater)

    def case(self, case_id: str) -> Case:
        for case in self.cases:
            if case.id == case_id:
                return case
        raise InputError("no such case in the dataset", case_id, self.root / MANIFEST_NAME)

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


def load_dataset(root: str | Path) -> Dataset:
    """Parse and structurally check `root/dataset.json`; raise ValidationError listing problems."""
    from bench.io import read_json_object

    root = Path(root).resolve()
    missing = f"not a dataset: {MANIFEST_NAME} is missing"
    manifest = read_json_object(root / MANIFEST_NAME, missing=missing)
    return load_dataset_from_dict(root, manifest)


def _manifest_problems(manifest: dict[str, Any], path: Path) -> list[Problem]:
    problems = [
        Problem(f"required field '{name}' is missing", file=path)
        for name in REQUIRED_FIELDS
        if name not in manifest
    ]
    if problems:
        return problems
    if manifest["format_version"] != FORMAT_VERSION:
        problems.append(
            Problem(
                f"format_version {manifest['format_version']!r} is not supported "
                f"(expected {FORMAT_VERSION})",
                file=path,
            )
        )
    raters = manifest["raters"]
    if not isinstance(raters, list) or not raters or not all(isinstance(r, str) for r in raters):
        return [*problems, Problem("'raters' must be a non-empty list of names", file=path)]
    if len(set(raters)) != len(raters):
        problems.append(Problem(f"'raters' lists a name twice: {raters}", file=path))
    if manifest["reference_rater"] not in raters:
        problems.append(
            Problem(
                f"reference_rater {manifest['reference_rater']!r} is not one of the raters "
                f"{raters}",
                file=path,
            )
        )
    truth = manifest.get("truth")
    label_sets = [*raters, truth] if truth else list(raters)
    if truth in raters:
        problems.append(Problem(f"truth {truth!r} must not also be a rater", file=path))

    cases = manifest["cases"]
    if not isinstance(cases, list) or not cases:
        return [*problems, Problem("'cases' must be a non-empty list", file=path)]
    ids = Counter(str(c.get("id")) for c in cases if isinstance(c, dict))
    problems += [
        Problem(f"duplicate case id (listed {count} times)", case=case_id, file=path)
        for case_id, count in ids.items()
        if count > 1
    ]
    for index, entry in enumerate(cases):
        if not isinstance(entry, dict):
            problems.append(Problem(f"cases[{index}] is not an object", file=path))
            continue
        case_id = str(entry.get("id", f"#{index}"))
        missing = [name for name in REQUIRED_CASE_FIELDS if name not in entry]
        if missing:
            problems.append(Problem(f"missing field(s) {', '.join(missing)}", case_id, path))
            continue
        if not isinstance(entry["scan_index"], int) or entry["scan_index"] < 0:
            problems.append(Problem("scan_index must be an integer >= 0", case_id, path))
        labels = entry["labels"]
        if not isinstance(labels, dict):
            problems.append(Problem("'labels' must map rater to path", case_id, path))
            continue
        problems += [
            Problem(f"no label for rater {rater!r}", case_id, path)
            for rater in label_sets
            if rater not in labels
        ]
        problems += [
            Problem(f"label for unknown rater {rater!r}", case_id, path)
            for rater in labels
            if rater not in label_sets
        ]
    first_scans = Counter(
        str(c["patient"])
        for c in cases
        if isinstance(c, dict) and c.get("scan_index") == 0 and "patient" in c
    )
    patients = {str(c["patient"]) for c in cases if isinstance(c, dict) and "patient" in c}
    problems += [
        Problem(
            f"patient {p!r} has {first_scans[p]} scans with scan_index 0 (needs one)", file=path
        )
        for p in sorted(patients)
        if first_scans[p] != 1
    ]
    return problems


def case_files(dataset: Dataset) -> list[Path]:
    """Every file a dataset's content consists of, in manifest order."""
    files: list[Path] = []
    for case in dataset.cases:
        files.append(case.image)
        files.extend(case.labels[name] for name in dataset.label_sets)
    return files


def compute_content_sha256(root: Path, files: list[Path]) -> str:
    """Hash of the case files: sorted (relative path, file sha256) lines, so order-independent."""
    from bench.io import sha256_file

    lines = sorted(f"{p.relative_to(root).as_posix()} {sha256_file(p)}" for p in files)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def write_manifest(root: str | Path, manifest: dict[str, Any]) -> Dataset:
    """Fill in format fields and the content hash, write `dataset.json` atomically, reload it."""
    from bench.io import write_json

    root = Path(root).resolve()
    manifest = {"format_version": FORMAT_VERSION, "modality": "NCCT", **manifest}
    manifest.pop("content_sha256", None)
    draft = load_dataset_from_dict(root, manifest)
    manifest["content_sha256"] = compute_content_sha256(root, case_files(draft))
    write_json(manifest, root / MANIFEST_NAME)
    return load_dataset(root)


def load_dataset_from_dict(root: Path, manifest: dict[str, Any]) -> Dataset:
    """Build a Dataset from an in-memory manifest after its structural checks."""
    problems = _manifest_problems(manifest, root / MANIFEST_NAME)
    if problems:
        raise ValidationError(problems)
    raters = tuple(manifest["raters"])
    return Dataset(
        root=root,
        name=str(manifest["name"]),
        raters=raters,
        reference_rater=str(manifest["reference_rater"]),
        truth=manifest.get("truth"),
        cases=tuple(
            Case(
                id=str(e["id"]),
                patient=str(e["patient"]),
                scan_index=int(e["scan_index"]),
                image=root / e["image"],
                labels={r: root / p for r, p in e["labels"].items()},
                laterality=e.get("laterality"),
                meta=dict(e.get("meta") or {}),
            )
            for e in manifest["cases"]
        ),
        content_sha256=manifest.get("content_sha256"),
        manifest=manifest,
    )
