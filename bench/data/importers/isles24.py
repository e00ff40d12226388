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
    ImportOptions,
    LabelValues,
    LayoutScan,
    SourceCase,
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
    masks = _lesion_masks(derivatives)
    cases = []
    for subject_dir in sorted(p for p in raw.iterdir() if SUBJECT.fullmatch(p.name)):
        subject = subject_dir.name
        ncct = _one(_session_files(subject_dir, ACUTE_SESSIONS, "*_ncct.nii*"), subject, "NCCT")
        if ncct is None:
            raise InputError("no acute NCCT (ses-01/*_ncct.nii.gz)", subject, subject_dir)
        mask = masks.get(subject)
        if mask is None:
            raise InputError(
                "no follow-up lesion mask (derivatives/.../ses-02/*_lesion-msk.nii.gz)",
                subject,
                derivatives,
            )
        cases.append(SourceCase(subject, ncct, {options.rater: mask}, origin=ncct))
    if not cases:
        raise InputError("no sub-* subject folders", file=raw)
    for subject, mask in sorted(masks.items()):
        if not (raw / subject).is_dir():
            raise InputError(
                "lesion mask has no subject in the raw data (extra case)", subject, mask
            )
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
    )


def _session_files(subject_dir: Path, sessions: tuple[str, ...], pattern: str) -> list[Path]:
    found: list[Path] = []
    for session in sessions:
        if (subject_dir / session).is_dir():
            found += sorted(
                p for p in (subject_dir / session).rglob(pattern) if not p.name.startswith(".")
            )
    return found


def _lesion_masks(derivatives: Path) -> dict[str, Path]:
    """subject -> its follow-up lesion mask, found anywhere under derivatives/."""
    by_subject: dict[str, list[Path]] = {}
    for session in FOLLOW_UP_SESSIONS:
        for path in sorted(derivatives.rglob(f"{session}/**/*lesion-msk.nii*")):
            subject = path.parent
            while subject != derivatives and not SUBJECT.fullmatch(subject.name):
                subject = subject.parent
            if subject != derivatives:
                by_subject.setdefault(subject.name, []).append(path)
    masks = {}
    for subject, paths in by_subject.items():
        mask = _one(paths, subject, "lesion mask", prefer="space-ncct")
        if mask is not None:
            masks[subject] = mask
    return masks


def _one(paths: list[Path], subject: str, what: str, prefer: str = "") -> Path | None:
    """The single file of a kind; two candidates are a duplicate case, not a guess."""
    paths = sorted(set(paths))
    if len(paths) > 1 and prefer:
        preferred = [p for p in paths if prefer in p.name]
        paths = preferred if len(preferred) == 1 else paths
    if len(paths) > 1:
        names = ", ".join(p.name for p in paths[:3])
        raise InputError(f"duplicate case: {len(paths)} {what} files ({names})", subject, paths[1])
    return paths[0] if paths else None
