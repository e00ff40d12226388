"""What every importer shares: the plan of a case, options, label values, CSV and file naming.

An importer only *finds* cases (`LayoutScan` of `SourceCase`s); `build.py` turns the plan into a
dataset v1. Pixels are read lazily (a `SourceCase` holds paths or loaders, never arrays), so
an import of hundreds of scans holds one volume in memory at a time.
"""

from __future__ import annotations

import csv
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from bench.errors import InputError
from bench.io import Geometry

log = logging.getLogger(__name__)
NIFTI_SUFFIXES = (".nii.gz", ".nii")
# Other single-file formats SimpleITK reads; they are converted to NIfTI, never linked.
CONVERTIBLE_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")
IMAGE_SUFFIXES = NIFTI_SUFFIXES + CONVERTIBLE_SUFFIXES
NNUNET_CHANNEL_SUFFIX = "_0000"
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
LATERALITIES = {
    "l": "left",
    "left": "left",
    "r": "right",
    "right": "right",
    "b": "bilateral",
    "both": "bilateral",
    "bilateral": "bilateral",
    "none": "none",
    "n": "none",
}


# The folder macOS zip archives put AppleDouble files in (`__MACOSX/<path>/._<name>`).
APPLEDOUBLE_FOLDER = "__MACOSX"


class SkipCase(Exception):
    """A case that cannot be imported as it is, but need not stop the import (listed, logged)."""


@dataclass(frozen=True)
class Skipped:
    case: str
    reason: str
    file: str | None = None


@dataclass
class ScanReport:
    """What a scan found wrong with single cases, and the files it did not use.

    A case problem stops the import at once, or with `--skip-invalid` leaves the case out and
    lists it; a notice is a line the user must see (a file not used, a licence not recorded).
    Nothing is left out without one or the other.
    """

    skip_invalid: bool
    skipped: list[Skipped] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def problem(self, problem: str, case: str, file: Path | str) -> None:
        if not self.skip_invalid:
            raise InputError(problem, case, file)
        self.skipped.append(Skipped(case, problem, str(file)))

    def notice(self, text: str) -> None:
        self.notices.append(text)

    def is_skipped(self, case: str) -> bool:
        return any(s.case == case for s in self.skipped)


@dataclass
class ImportOptions:
    """Every choice a user can make on the command line, with its default in one place."""

    copy: bool = False
    name: str | None = None
    csv: Path | None = None
    rater: str = "A"
    raters: tuple[str, ...] = ()  # "NAME=FOLDER" or "FOLDER" entries (multi-rater layouts)
    reference_rater: str | None = None
    lesion_values: tuple[int, ...] | None = None
    label_values: tuple[int, ...] | None = None
    license: str | None = None
    images_dir: str | None = None  # None: the layout's own folder name
    labels_dir: str | None = None
    allow_tilt: bool = False
    nifti_transform: str | None = None  # "qform" / "sform": which to trust where they disagree
    copy_image_header: bool = False  # a mask of the image's shape takes the image's header
    skip_invalid: bool = False
    force: bool = False
    n_folds: int = 5
    seed: int = 0
    progress: bool = False


@dataclass(frozen=True)
class LabelValues:
    """Which stored label values exist and which of them count as lesion."""

    lesion: frozenset[int]
    allowed: frozenset[int]

    @classmethod
    def of(
        cls,
        options: ImportOptions,
        default_lesion: Iterable[int] = (1,),
        default_allowed: Iterable[int] | None = None,
    ) -> LabelValues:
        lesion = frozenset(options.lesion_values or default_lesion)
        if options.label_values is not None:
            allowed = frozenset(options.label_values) | {0}
        elif default_allowed is not None:
            allowed = frozenset(default_allowed) | {0}
        else:
            allowed = frozenset({0})
        return cls(lesion=lesion, allowed=allowed | lesion)


@dataclass(frozen=True)
class PlacedImage:
    """The image as written into the dataset, which its labels are checked against."""

    geometry: Geometry
    slice_files: tuple[Path, ...] = ()  # DICOM files in z order (AISD maps PNG masks to them)


@dataclass
class LoadedImage:
    """An image converted in memory (DICOM), with what the conversion learned about it."""

    image: sitk.Image
    meta: dict[str, Any] = field(default_factory=dict)
    slice_files: tuple[Path, ...] = ()
    notices: list[str] = field(default_factory=list)  # e.g. a grid resampled, files not used


ImageLoader = Callable[[], LoadedImage]
# Returns the stored label values (z, y, x) on the placed image's grid.
LabelLoader = Callable[[PlacedImage], np.ndarray]


@dataclass
class SourceCase:
    """One case as found in the user's layout: where its image and labels come from."""

    id: str
    image: Path | ImageLoader
    labels: dict[str, Path | LabelLoader]
    origin: Path  # the file or folder to name when this case is reported
    meta: dict[str, Any] = field(default_factory=dict)
    patient: str | None = None
    scan_index: int = 0
    laterality: str | None = None


@dataclass
class LayoutScan:
    """What an importer found: the cases, the raters and the dataset's provenance."""

    layout: str
    source_root: Path
    cases: list[SourceCase]
    raters: list[str]
    reference_rater: str
    label_values: LabelValues
    source: str
    license: str
    default_name: str
    note: str | None = None
    skipped: list[Skipped] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    reorient_labels: bool = False  # lossless axis flips/permutations of masks (DICOM layouts)


@dataclass(frozen=True)
class CaseInfo:
    patient: str
    scan_index: int
    laterality: str | None


def is_visible(path: Path) -> bool:
    """False for hidden files (`.DS_Store`, macOS AppleDouble `._case.nii.gz`) and folders.

    The one test every file search of the importers applies: an AppleDouble file carries a
    real file's name and would otherwise be read as a second mask or slice of that case.
    Other files that are not data (`Thumbs.db`) are not hidden: each search lists them.
    """
    return not path.name.startswith(".") and path.name != APPLEDOUBLE_FOLDER


def visible_files(folder: Path, recursive: bool = False) -> list[Path]:
    """The files in `folder` (or below it), sorted, without hidden files or folders."""
    found = []
    for path in sorted(folder.rglob("*") if recursive else folder.iterdir()):
        relative = path.relative_to(folder).parts
        if path.is_file() and all(is_visible(Path(part)) for part in relative):
            found.append(path)
    return found


def visible_dirs(folder: Path) -> list[Path]:
    """The sub-folders of `folder`, sorted, without hidden ones."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and is_visible(p))


def image_suffix(name: str, suffixes: Iterable[str] = IMAGE_SUFFIXES) -> str | None:
    """The suffix of `name` among `suffixes` in lower case (`CASE.NII.GZ` -> `.nii.gz`)."""
    lower = name.lower()
    for suffix in suffixes:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return suffix
    return None


def strip_suffix(name: str, suffixes: Iterable[str] = IMAGE_SUFFIXES) -> str | None:
    """`case.nii.gz` (any case of the suffix) -> `case`; None when it has none of them."""
    suffix = image_suffix(name, suffixes)
    return name[: -len(suffix)] if suffix else None


def suffix_of(path: Path) -> str:
    """The file's image suffix in lower case, the name its link in the dataset gets."""
    return image_suffix(path.name) or "".join(path.suffixes).lower()


def files_by_case(
    folder: Path, report: ScanReport, strip: str = "", what: str = "file"
) -> dict[str, Path]:
    """Map case id to image file in `folder`; every other visible file is a notice.

    Two files for one case id are a problem of that case (neither is guessed).
    """
    found: dict[str, Path] = {}
    duplicates: dict[str, list[Path]] = {}
    for sub_folder in visible_dirs(folder):
        report.notice(f"{sub_folder}: not used (a folder; {what}s are files in {folder.name}/)")
    for path in visible_files(folder):
        stem = strip_suffix(path.name)
        if stem is None:
            report.notice(f"{path}: not used (not NIfTI, .mha or .nrrd)")
            continue
        if strip:
            if not stem.endswith(strip):
                channel = re.search(r"_(\d{4})$", stem)
                why = f"channel {channel[1]}; only" if channel else "not named"
                report.notice(f"{path}: not used ({why} <case>{strip}.* is imported)")
                continue
            stem = stem[: -len(strip)]
        if stem in found:
            duplicates[stem] = [found.pop(stem)]
        if stem in duplicates:
            duplicates[stem].append(path)
            continue
        found[stem] = path
    for stem, paths in sorted(duplicates.items()):
        names = " and ".join(p.name for p in paths)
        report.problem(f"duplicate case id: {what}s {names} name the same case", stem, paths[-1])
    return found


def natural_key(path: Path) -> list[Any]:
    """Sort `2.dcm` before `10.dcm` (file names numbered without zero padding)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def parse_int_list(text: str) -> tuple[int, ...]:
    """`"1,2,3,5"` or `"1-3,5"` -> (1, 2, 3, 5)."""
    values: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            values.extend(range(int(low), int(high) + 1) if high else [int(low)])
        except ValueError as error:
            raise InputError(f"'{text}' is not a list of integers (e.g. 1,2,3,5)") from error
    return tuple(sorted(set(values)))


def rater_folders(labels_dir: Path, options: ImportOptions) -> dict[str, Path]:
    """Rater name -> label folder: `--raters NAME=FOLDER,...`, else one rater per sub-folder.

    A labels folder that holds mask files directly (no sub-folders) is one rater, named
    by `--rater`. Order matters: the first rater is the reference unless told otherwise.
    """
    if not labels_dir.is_dir():
        raise InputError("label folder is missing", file=labels_dir)
    if options.raters:
        folders = {}
        for spec in options.raters:
            name, _, folder = spec.partition("=")
            path = labels_dir / (folder or name)
            if not path.is_dir():
                raise InputError(f"no label folder for rater {name!r}", file=path)
            if name in folders:
                raise InputError(f"rater {name!r} is given twice in --raters")
            folders[name] = path
        return folders
    subfolders = visible_dirs(labels_dir)
    direct = [p for p in visible_files(labels_dir) if strip_suffix(p.name)]
    if subfolders and direct:
        raise InputError(
            "holds both mask files and rater sub-folders; use one layout (or --raters)",
            file=labels_dir,
        )
    if direct:
        return {options.rater: labels_dir}
    if not subfolders:
        raise InputError("no masks and no rater sub-folders", file=labels_dir)
    unusable = [p.name for p in subfolders if not SAFE_NAME.fullmatch(p.name)]
    if unusable:
        renamed = ",".join(
            f"{_plain(p.name)}={p.name}" if p.name in unusable else p.name for p in subfolders
        )
        raise InputError(
            f"rater folder {unusable[0]!r} cannot be a rater name (letters, digits, '_', '-', "
            f"'.'; it becomes a folder name): name the raters with --raters '{renamed}'",
            file=labels_dir / unusable[0],
        )
    return {p.name: p for p in subfolders}


def _plain(name: str) -> str:
    """A rater name close to a folder name: other characters become '_'."""
    plain = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.-")
    return plain or "rater"


def reference_of(raters: list[str], options: ImportOptions) -> str:
    reference = options.reference_rater or raters[0]
    if reference not in raters:
        raise InputError(f"--reference-rater {reference!r} is not one of the raters {raters}")
    return reference


def read_case_table(path: Path) -> dict[str, CaseInfo]:
    """Read the optional CSV of case, patient, scan_index, laterality (header row required).

    Only `case` is required; a missing patient means one patient per case, a missing
    scan_index means 0. Comma, semicolon and tab separators are accepted.
    """
    if not path.is_file():
        raise InputError("CSV file is missing", file=path)
    text = path.read_text(encoding="utf-8-sig")
    try:
        dialect = csv.Sniffer().sniff(text.splitlines()[0] if text else ",", delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.DictReader(text.splitlines(), dialect=dialect))
    if not rows:
        raise InputError("CSV has no rows", file=path)
    columns = {name.strip().lower(): name for name in rows[0] if name}
    case_col = next((columns[c] for c in ("case", "case_id", "id") if c in columns), None)
    if case_col is None:
        raise InputError(f"CSV needs a 'case' column (found {sorted(columns)})", file=path)
    patient_col = next((columns[c] for c in ("patient", "patient_id") if c in columns), None)
    table: dict[str, CaseInfo] = {}
    for line, row in enumerate(rows, start=2):
        case = (row.get(case_col) or "").strip()
        if not case:
            raise InputError(f"line {line}: empty case id", file=path)
        if case in table:
            raise InputError(f"line {line}: duplicate case id in the CSV", case, path)
        patient = (row.get(patient_col) or "").strip() if patient_col else ""
        table[case] = CaseInfo(
            patient=patient or case,
            scan_index=_scan_index(row.get(columns.get("scan_index", "")), line, case, path),
            laterality=_laterality(row.get(columns.get("laterality", "")), line, case, path),
        )
    return table


def _scan_index(value: str | None, line: int, case: str, path: Path) -> int:
    if value is None or not value.strip():
        return 0
    try:
        index = int(value)
    except ValueError:
        index = -1
    if index < 0:
        raise InputError(f"line {line}: scan_index {value!r} is not an integer >= 0", case, path)
    return index


def _laterality(value: str | None, line: int, case: str, path: Path) -> str | None:
    if value is None or not value.strip():
        return None
    try:
        return LATERALITIES[value.strip().lower()]
    except KeyError:
        raise InputError(
            f"line {line}: laterality {value!r} is not one of left, right, bilateral, none",
            case,
            path,
        ) from None


def apply_case_table(cases: list[SourceCase], csv_path: Path | None) -> None:
    """Set patient, scan_index and laterality from the CSV, else one patient per case."""
    if csv_path is None:
        for case in cases:
            case.patient = case.patient or case.id
        return
    table = read_case_table(csv_path)
    for case in cases:
        if case.id not in table:
            raise InputError("case is not listed in the CSV", case.id, csv_path)
        info = table[case.id]
        case.patient, case.scan_index = info.patient, info.scan_index
        case.laterality = info.laterality or case.laterality
    unused = sorted(set(table) - {case.id for case in cases})
    if unused:
        log.info("%d case(s) in %s are not in the source: %s", len(unused), csv_path, unused[:5])
    first_scans = Counter(c.patient for c in cases if c.scan_index == 0)
    for patient, count in first_scans.items():
        if count > 1:
            raise InputError(
                f"patient {patient!r} has {count} scans with scan_index 0 (needs exactly one)",
                file=csv_path,
            )


def check_names(raters: Iterable[str]) -> None:
    """Rater names become folder names (labels/<rater>/): keep them plain."""
    for rater in raters:
        if not SAFE_NAME.fullmatch(rater):
            raise InputError(
                f"rater name {rater!r} must be letters, digits, '_', '-' or '.' "
                "(it becomes a folder name)"
            )


def check_unique_ids(cases: list[SourceCase]) -> None:
    seen: dict[str, SourceCase] = {}
    for case in cases:
        if case.id in seen:
            raise InputError(
                f"duplicate case id (also found at {seen[case.id].origin})", case.id, case.origin
            )
        seen[case.id] = case
