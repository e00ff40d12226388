"""Write a phantom as a bench dataset v1 folder (images, labels, dataset.json, splits.json),
and keep one default phantom in the user's cache.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from bench.data.dataset import (
    MANIFEST_NAME,
    SPLITS_NAME,
    Dataset,
    case_files,
    compute_content_sha256,
    load_dataset,
    write_manifest,
)
from bench.data.phantom.acquisition import output_geometry
from bench.data.phantom.anatomy import load_template
from bench.data.phantom.profiles import DEFAULT_PROFILE, get_profile
from bench.data.phantom.raters import RATERS
from bench.data.phantom.simulate import REREAD_SUFFIX, TRUTH, plan_patients, simulate_patient
from bench.errors import BenchError, InputError
from bench.io import write_image

logger = logging.getLogger(__name__)

# Bump when the generator changes what it writes, so cached phantoms are rebuilt.
GENERATOR_VERSION = 3  # 3: lesion volumes calibrated to rater A (lesion.VOLUME_MEDIAN_ML)
LICENSE = "CC-BY-4.0 (the MNI152 2009a templates: see source)"
SOURCE = (
    "NCCT Stroke Bench digital phantom: synthetic non-contrast head CT built from the "
    "MNI ICBM152 2009a nonlinear symmetric templates (T1, grey and white matter; "
    "Fonov et al., NeuroImage 2011; Copyright (C) 1993-2009 Louis Collins, McConnell Brain "
    "Imaging Centre, Montreal Neurological Institute, McGill University) as shipped with "
    "nilearn, with a synthetic skull, scalp, head pose, acute MCA-territory lesion, "
    "distractors and three simulated raters. No patient data."
)


def build_phantom(
    out_dir: str | Path,
    profile: str = DEFAULT_PROFILE,
    n_patients: int | None = None,
    seed: int = 0,
    progress: bool = True,
    rereadings: Mapping[str, str | Path] | None = None,
) -> Dataset:
    """Generate the phantom into `out_dir` and return the loaded dataset.

    Same (profile, n_patients, seed) gives byte-identical files and the same content hash.
    Files of an earlier build in `out_dir` that this build does not write are removed, so the
    folder never holds stray cases. `rereadings` maps a rater to a folder that receives that
    rater's second, independent reading of every case (`<case>.nii.gz`, outside the dataset,
    which stays byte-identical).
    """
    from tqdm import tqdm

    settings = get_profile(profile)
    count = settings.n_patients if n_patients is None else int(n_patients)
    if count < 1:
        raise InputError(f"the phantom needs at least one patient, got {count}")
    root = Path(out_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    template = load_template(settings.template_resolution_mm)
    geometry = output_geometry(settings)
    plans = plan_patients(count, settings.block, seed)
    label_sets = (*RATERS, TRUTH)
    rereaders = {name: Path(folder) for name, folder in (rereadings or {}).items()}
    unknown = sorted(set(rereaders) - set(RATERS))
    if unknown:
        raise InputError(f"no rater {unknown[0]!r} to reread (raters: {', '.join(RATERS)})")

    cases, written = [], set()
    for plan in tqdm(plans, desc=f"phantom {profile}", unit="patient", disable=not progress):
        for scan in simulate_patient(plan, settings, template, geometry, seed, tuple(rereaders)):
            for name, folder in rereaders.items():
                reread = scan.labels[f"{name}{REREAD_SUFFIX}"]
                write_image(reread, geometry, folder / f"{scan.case_id}.nii.gz")
            image_path = f"images/{scan.case_id}.nii.gz"
            write_image(scan.image, geometry, root / image_path)
            labels = {}
            for name in label_sets:
                label_path = f"labels/{name}/{scan.case_id}.nii.gz"
                write_image(scan.labels[name], geometry, root / label_path)
                labels[name] = label_path
            written.update([image_path, *labels.values()])
            cases.append(
                {
                    "id": scan.case_id,
                    "patient": scan.patient_id,
                    "scan_index": scan.scan_index,
                    "image": image_path,
                    "labels": labels,
                    "laterality": scan.laterality,
                    "meta": scan.meta,
                }
            )
    _remove_stale_files(root, written, label_sets)
    manifest = {
        "name": f"ncct-phantom-{profile}",
        "raters": list(RATERS),
        "reference_rater": "A",
        "truth": TRUTH,
        "cases": cases,
        "license": LICENSE,
        "source": SOURCE,
        "phantom": {
            "profile": profile,
            "patients": count,
            "seed": seed,
            "generator_version": GENERATOR_VERSION,
        },
    }
    dataset = write_manifest(root, manifest)
    from bench.splits import make_split, write_split

    write_split(dataset, make_split(dataset))
    logger.info("wrote %d cases of %d patients to %s", len(cases), count, root)
    return dataset


def _remove_stale_files(root: Path, written: set[str], label_sets: tuple[str, ...]) -> None:
    folders = [root / "images", *(root / "labels" / name for name in label_sets)]
    for folder in folders:
        for path in folder.glob("ph*.nii.gz"):
            if path.relative_to(root).as_posix() not in written:
                path.unlink()


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/ncct-stroke-bench`, else `~/.cache/ncct-stroke-bench` (read per call)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ncct-stroke-bench"


def dataset_or_default(root: str | Path | None) -> Path:
    """`root` when a command was given a dataset, else the default phantom (built once)."""
    return Path(root) if root is not None else ensure_default_phantom()


def ensure_default_phantom(cache_dir: str | Path | None = None) -> Path:
    """The default (demo) phantom, built once into the cache and reused while its files still
    match the content hash in its manifest; rebuilt (atomically: build aside, then swap) when
    missing, from another generator version, or corrupted."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache / f"phantom-{DEFAULT_PROFILE}-v{GENERATOR_VERSION}"
    if _is_intact(target):
        return target
    cache.mkdir(parents=True, exist_ok=True)
    logger.info("building the default phantom into %s (once)", target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=cache))
    try:
        build_phantom(staging, profile=DEFAULT_PROFILE, seed=0, progress=True)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _is_intact(root: Path) -> bool:
    """The folder holds a complete phantom whose case files hash to its manifest's hash."""
    if not (root / MANIFEST_NAME).is_file() or not (root / SPLITS_NAME).is_file():
        return False
    try:
        dataset = load_dataset(root)
        files = case_files(dataset)
        if not all(path.is_file() for path in files):
            return False
        return compute_content_sha256(dataset.root, files) == dataset.content_sha256
    except (BenchError, OSError):
        return False
