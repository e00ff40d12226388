"""ISLES'24 (Riedel et al. 2024): BIDS-like acute NCCT with the follow-up infarct as label.

    SOURCE/raw_data/sub-strokeXXXX/ses-01/sub-strokeXXXX_ses-01_ncct.nii.gz
    SOURCE/derivatives/sub-strokeXXXX/ses-02/sub-strokeXXXX_ses-02_space-ncct_lesion-msk.nii.gz

Both spellings seen in the releases are accepted: `raw_data` or `rawdata` and `ses-01` or
`ses-0001`; files may sit in a modality sub-folder (`ses-01/ct/`) and derivatives may be
grouped by pipeline (`derivatives/<pipeline>/sub-*/ses-02/`). The label is the final infarct
segmented on follow-up MRI and registered to the NCCT, not the acute hypodensity a
neuroradiologist outlines on NCCT: the manifest says so in `source` and `note`.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.data.importers.common import (
    NIFTI_SUFFIXES,
    ImportOptions,
    LabelValues,
    LayoutScan,
    ScanReport,
    SourceCase,
    strip_suffix,
    visible_dirs,
    visible_files,
)
from bench.errors import InputError

RAW_FOLDERS = ("raw_data", "rawdata")
ACUTE_SESSIONS = ("ses-01", "ses-0001")
FOLLOW_UP_SESSIONS = ("ses-02", "ses-0002")
SUBJECT = re.compile(r"sub-[A-Za-z0-9]+")
NOTE = (
    "ISLES'24 labels are the follow-up infarct (segmented on ses-02 MRI, registered to the "
    "acute NCCT), not acute hypodensity: agreement with them measures final-infarct "
    "prediction, not what is visible on the admission NCCT."
)


def scan(source: Path, options: ImportOptions) -> LayoutScan:
    raw = next((source / n for n in RAW_FOLDERS if (source / n).is_dir()), None)
    if raw is None:
        raise InputError(f"no {' or '.join(RAW_FOLDERS)} folder (not ISLES'24)", file=source)
    derivatives = source / "derivatives"
    if not derivatives.is_dir():
        raise InputError("derivatives folder (lesion masks) is missing", file=derivatives)
    report = ScanReport(options.skip_invalid)
    masks = _lesion_masks(derivatives, report)
    cases = []
    subjects = [p for p in visible_dirs(raw) if SUBJECT.fullmatch(p.name)]
    for folder in visible_dirs(raw):
        if not SUBJECT.fullmatch(folder.name):
            report.notice(f"{folder}: not used (not a sub-<label> subject folder)")
    for subject_dir in subjects:
        subject = subject_dir.name
        ncct = _one(_session_files(subject_dir, ACUTE_SESSIONS, "_ncct"), subject, "NCCT", report)
        if report.is_skipped(subject):
            continue
        if ncct is None:
            report.problem("no acute NCCT (ses-01/*_ncct.nii.gz)", subject, subject_dir)
            continue
        mask = masks.get(subject)
        if mask is None:
            report.problem(
                "no follow-up lesion mask (derivatives/.../ses-02/*_lesion-msk.nii.gz)",
                subject,
                derivatives,
            )
            continue
        cases.append(SourceCase(subject, ncct, {options.rater: mask}, origin=ncct))
    if not subjects:
        raise InputError("no sub-* subject folders", file=raw)
    for subject, mask in sorted(masks.items()):
        if not (raw / subject).is_dir():
            report.problem("lesion mask has no subject in the raw data (extra case)", subject, mask)
    return LayoutScan(
        layout="isles24",
        source_root=source,
        cases=cases,
        raters=[options.rater],
        reference_rater=options.rater,
        label_values=LabelValues.of(options),
        source="ISLES'24 challenge training data (Riedel et al. 2024, arXiv:2408.09259): "
        "acute NCCT (ses-01); label = follow-up infarct from ses-02 MRI registered to NCCT, "
        "NOT acute hypodensity",
        license="CC BY-NC-SA 4.0",
        default_name="isles24",
        note=NOTE,
        skipped=report.skipped,
        notices=report.notices,
    )


def _session_files(subject_dir: Path, sessions: tuple[str, ...], ending: str) -> list[Path]:
    """NIfTI files named `*<ending>.nii[.gz]` in a session folder (or below it)."""
    found: list[Path] = []
    for session in sessions:
        if (subject_dir / session).is_dir():
            found += [
                p
                for p in visible_files(subject_dir / session, recursive=True)
                if (strip_suffix(p.name, NIFTI_SUFFIXES) or "").endswith(ending)
            ]
    return found


def _lesion_masks(derivatives: Path, report: ScanReport) -> dict[str, Path]:
    """subject -> its follow-up lesion mask, found anywhere under derivatives/."""
    by_subject: dict[str, list[Path]] = {}
    for path in visible_files(derivatives, recursive=True):
        stem = strip_suffix(path.name, NIFTI_SUFFIXES) or ""
        parts = path.relative_to(derivatives).parts
        if not stem.endswith("lesion-msk") or not set(parts[:-1]) & set(FOLLOW_UP_SESSIONS):
            continue
        subject = next((p for p in reversed(parts[:-1]) if SUBJECT.fullmatch(p)), None)
        if subject is None:
            report.notice(f"{path}: not used (lesion mask outside a sub-<label> folder)")
            continue
        by_subject.setdefault(subject, []).append(path)
    masks = {}
    for subject, paths in sorted(by_subject.items()):
        mask = _one(paths, subject, "lesion mask", report, prefer="space-ncct")
        if mask is not None:
            masks[subject] = mask
    return masks


def _one(
    paths: list[Path], subject: str, what: str, report: ScanReport, prefer: str = ""
) -> Path | None:
    """The single file of a kind; two candidates are a duplicate case, not a guess."""
    paths = sorted(set(paths))
    if len(paths) > 1 and prefer:
        preferred = [p for p in paths if prefer in p.name]
        paths = preferred if len(preferred) == 1 else paths
    if len(paths) > 1:
        names = ", ".join(p.name for p in paths[:3])
        report.problem(f"duplicate case: {len(paths)} {what} files ({names})", subject, paths[1])
        return None
    return paths[0] if paths else None
