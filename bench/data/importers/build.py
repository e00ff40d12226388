"""Turn a `LayoutScan` into a validated dataset v1 with its split, atomically.

Everything is written into a hidden staging folder next to `--out` and renamed into place only
after the foundation's validator passed and the split is written: an interrupted or failed
import leaves no half dataset behind, and `--out` is never a mixture of two imports.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench import __version__
from bench.data.dataset import MANIFEST_NAME, SPLITS_NAME, Dataset, load_dataset, write_manifest
from bench.data.importers.common import (
    ImportOptions,
    LayoutScan,
    SkipCase,
    Skipped,
    SourceCase,
    apply_case_table,
    check_names,
    check_unique_ids,
    strip_suffix,
)
from bench.data.importers.place import PlacedCase, PlaceSettings, place_case
from bench.data.importers.summary import ImportSummary
from bench.data.validate import validate_dataset
from bench.errors import InputError, Problem, ValidationError
from bench.splits import make_split, write_split

log = logging.getLogger(__name__)
# What an import writes into --out; --force replaces a folder holding nothing else.
OWN_ENTRIES = {MANIFEST_NAME, SPLITS_NAME, "images", "labels"}


@dataclass
class ImportResult:
    dataset: Dataset
    summary: ImportSummary
    split_path: Path


def build_dataset(scan: LayoutScan, out: Path, options: ImportOptions) -> ImportResult:
    out = Path(out).resolve()
    _check_out(out, scan.source_root.resolve(), options.force)
    check_names(scan.raters)
    check_unique_ids(scan.cases)
    apply_case_table(scan.cases, options.csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.importing-", dir=out.parent))
    try:
        result = _build_in(staging, scan, options, shown_as=out)
        _share_as_umask_allows(staging)
        _move_into_place(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    dataset = load_dataset(out)
    return ImportResult(dataset, result.summary, out / SPLITS_NAME)


def _build_in(root: Path, scan: LayoutScan, options: ImportOptions, shown_as: Path) -> ImportResult:
    skipped = list(scan.skipped)
    placed: dict[str, PlacedCase] = {}
    settings = PlaceSettings.of(scan, options)
    for case in tqdm(scan.cases, desc="import", unit="case", disable=not options.progress):
        try:
            placed[case.id] = place_case(case, root, settings)
        except SkipCase as reason:
            skipped.append(_skip(case, str(reason), root))
        except InputError as error:
            if not options.skip_invalid:
                raise
            file = error.finding.file
            skipped.append(_skip(case, error.finding.problem, root, file))
    kept = _drop_orphan_scans(scan.cases, placed, skipped, root)
    skipped.sort(key=lambda s: s.case)
    notices = [*scan.notices, *(n for c in kept for n in placed[c.id].notices)]
    for notice in notices:
        log.warning("%s", notice)
    for entry in skipped:
        log.warning("skipped case %s: %s%s", entry.case, entry.reason, _at(entry.file))
    if not kept:
        raise InputError(f"no case left to import ({len(skipped)} skipped)", file=scan.source_root)

    name = options.name or scan.default_name
    manifest = _manifest(name, scan, kept, placed, skipped, notices, options)
    dataset = write_manifest(root, manifest)
    problems = validate_dataset(dataset, progress=options.progress)
    if problems:  # name the files where the user will look for them, not in the staging folder
        raise ValidationError([_shown(p, root, shown_as) for p in problems])
    first_scan_volumes = {
        c.id: placed[c.id].lesion_ml[scan.reference_rater] for c in kept if c.scan_index == 0
    }
    split = make_split(dataset, options.n_folds, options.seed, volumes_ml=first_scan_volumes)
    split_path = write_split(dataset, split)
    summary = ImportSummary.of(
        name,
        scan.layout,
        [placed[c.id] for c in kept],
        {c.id: str(c.patient) for c in kept},
        scan.raters,
        scan.reference_rater,
        skipped,
        notices,
        scan.note,
    )
    return ImportResult(dataset, summary, split_path)


def _shown(problem: Problem, root: Path, shown_as: Path) -> Problem:
    file = problem.file
    if file is not None and Path(file).is_relative_to(root):
        file = shown_as / Path(file).relative_to(root)
    return Problem(problem.problem, problem.case, file)


def _skip(case: SourceCase, reason: str, root: Path, file: Any = None) -> Skipped:
    _remove_case_files(root, case.id)
    return Skipped(case.id, reason, str(file if file is not None else case.origin))


def _at(file: str | None) -> str:
    return f" ({file})" if file else ""


def _drop_orphan_scans(
    cases: list[SourceCase], placed: dict[str, PlacedCase], skipped: list[Skipped], root: Path
) -> list[SourceCase]:
    """Later scans of a patient whose first scan was skipped are skipped too.

    The split validates each patient's first scan (scan_index 0); renumbering the remaining
    scans would silently change which scan is validated.
    """
    kept = [c for c in cases if c.id in placed]
    with_first = {c.patient for c in kept if c.scan_index == 0}
    for case in [c for c in kept if c.patient not in with_first]:
        skipped.append(
            _skip(case, f"patient {case.patient} has no imported first scan (scan_index 0)", root)
        )
        del placed[case.id]
    return [c for c in kept if c.patient in with_first]


def _remove_case_files(root: Path, case_id: str) -> None:
    for folder in (root / "images", root / "labels"):
        if folder.is_dir():
            for path in list(folder.rglob("*")):
                if not path.is_dir() and strip_suffix(path.name) == case_id:
                    path.unlink()


def _manifest(
    name: str,
    scan: LayoutScan,
    kept: list[SourceCase],
    placed: dict[str, PlacedCase],
    skipped: list[Skipped],
    notices: list[str],
    options: ImportOptions,
) -> dict[str, Any]:
    cases = []
    for case in kept:
        entry: dict[str, Any] = {
            "id": case.id,
            "patient": case.patient,
            "scan_index": case.scan_index,
            "image": placed[case.id].image,
            "labels": placed[case.id].labels,
        }
        if case.laterality:
            entry["laterality"] = case.laterality
        entry["meta"] = {
            "source": Path(os.path.relpath(case.origin, scan.source_root)).as_posix(),
            **placed[case.id].meta,
        }
        cases.append(entry)
    manifest: dict[str, Any] = {
        "name": name,
        "raters": list(scan.raters),
        "reference_rater": scan.reference_rater,
        "cases": cases,
        "license": options.license or scan.license,
        "source": scan.source,
        "import": {
            "layout": scan.layout,
            "from": str(scan.source_root.resolve()),
            "pixels": "copied" if options.copy else "linked where the format allows",
            "lesion_values": sorted(scan.label_values.lesion),
            "label_values": sorted(scan.label_values.allowed),
            "skipped": [{"case": s.case, "reason": s.reason} for s in skipped],
            "notices": notices,
            "bench_version": __version__,
        },
    }
    if scan.note:
        manifest["note"] = scan.note
    return manifest


def _check_out(out: Path, source: Path, force: bool) -> None:
    if out == source or source.is_relative_to(out):
        raise InputError("--out must not be the source folder or contain it", file=out)
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError("--out exists and is not a folder", file=out)
    entries = {p.name for p in out.iterdir()}
    if not entries:
        return
    if MANIFEST_NAME in entries and entries <= OWN_ENTRIES:
        if force:
            return
        raise InputError("already holds a dataset (use --force to replace it)", file=out)
    raise InputError("--out is not empty and holds no earlier import", file=out)


def _share_as_umask_allows(root: Path) -> None:
    """Give the staged dataset the permissions the user's umask asks for.

    `tempfile` creates the staging folder and every atomically written file owner-only
    (0700 / 0600), which would make a dataset shared on a cluster unreadable to the group.
    Symlinks are left alone (chmod would change their targets, the user's files).
    """
    umask = _current_umask()
    for folder, dirs, files in os.walk(root):
        os.chmod(folder, 0o777 & ~umask)
        for name in files:
            path = Path(folder) / name
            if not path.is_symlink():
                os.chmod(path, 0o666 & ~umask)
        dirs[:] = [d for d in dirs if not (Path(folder) / d).is_symlink()]


def _current_umask() -> int:
    # The only portable way to read the umask is to set it and put it back.
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _move_into_place(staging: Path, out: Path) -> None:
    if not out.exists():
        os.replace(staging, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.replaced-", dir=out.parent))
    os.replace(out, old / out.name)
    os.replace(staging, out)
    shutil.rmtree(old)  # symlinks inside are removed, never followed
