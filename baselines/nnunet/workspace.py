"""One nnU-Net workspace per (method, dataset, profile): raw, preprocessed and results folders.

nnU-Net finds its folders through the environment variables nnUNet_raw, nnUNet_preprocessed
and nnUNet_results. In nnunetv2 >= 2.6 `nnunetv2.paths` holds lazy `_EnvPath` objects that read
`os.environ` each time a path is used, so setting the variables around each call is enough: no
module needs patching, and nothing is set globally or at import time. Older versions read the
variables once at import into plain strings that every module copied (`from nnunetv2.paths
import nnUNet_raw`), so for them the same context manager also swaps those module attributes.
The environment is process-wide, hence the lock: one workspace is active at a time.

All folds of a method share one workspace, and `bench run --executor local` trains folds in
parallel processes: `preparation_lock` makes the second process wait for the first one's
raw dataset and preprocessing (which deletes and rewrites the preprocessed folder), and then
find them done.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import io
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.adapter import FoldIds, LabelledCase, channel_files
from bench.errors import BenchError
from bench.io import atomic_path, sha256_file, write_json

log = logging.getLogger(__name__)

DATASET_NAME = "Dataset900_Bench"  # nnU-Net insists on DatasetXXX_Name
PLANS = "nnUNetPlans"
PATH_VARIABLES = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")
PREPARATION_LOCK = ".preparation.lock"
_LOCK = threading.RLock()


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def preprocessed(self) -> Path:
        return self.root / "preprocessed"

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def raw_dataset(self) -> Path:
        return self.raw / DATASET_NAME

    @property
    def preprocessed_dataset(self) -> Path:
        return self.preprocessed / DATASET_NAME

    def trainer_dir(self, trainer_name: str, configuration: str) -> Path:
        """nnU-Net's `<results>/<dataset>/<trainer>__<plans>__<configuration>` folder."""
        return self.results / DATASET_NAME / f"{trainer_name}__{PLANS}__{configuration}"


@contextlib.contextmanager
def preparation_lock(workspace: Workspace) -> Iterator[None]:
    """Hold the workspace's inter-process lock (`flock` on a file in it) for the block.

    The kernel drops the lock when its holder dies, so a killed run never leaves the
    workspace locked; the lock file itself stays (it holds nothing).
    """
    workspace.root.mkdir(parents=True, exist_ok=True)
    with open(workspace.root / PREPARATION_LOCK, "a") as handle:
        started = time.perf_counter()
        fcntl.flock(handle, fcntl.LOCK_EX)
        waited = time.perf_counter() - started
        if waited > 1.0:
            log.info("waited %.1f s for another process preparing %s", waited, workspace.root)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _LogStream(io.TextIOBase):
    """A stdout stand-in that turns nnU-Net's prints into debug log lines."""

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                log.debug("nnU-Net: %s", line.rstrip())
        return len(text)


@contextlib.contextmanager
def nnunet_environment(
    workspace: Workspace, augmentation_workers: int | None = None
) -> Iterator[Workspace]:
    """Point nnU-Net at `workspace` (and quiet its prints) for the duration of the block.

    `augmentation_workers` sets nnUNet_n_proc_DA; 0 means in-process augmentation, which
    nnU-Net's planner cannot take (it calls torch.set_num_threads(0)): plan with 1.
    """
    values = {
        "nnUNet_raw": str(workspace.raw),
        "nnUNet_preprocessed": str(workspace.preprocessed),
        "nnUNet_results": str(workspace.results),
    }
    if augmentation_workers is not None:
        values["nnUNet_n_proc_DA"] = str(augmentation_workers)
    for path in (workspace.raw, workspace.preprocessed, workspace.results):
        path.mkdir(parents=True, exist_ok=True)
    with _LOCK:
        saved = {name: os.environ.get(name) for name in values}
        os.environ.update(values)
        patched = _patch_legacy_paths(values)
        try:
            with contextlib.redirect_stdout(_LogStream()):
                yield workspace
        finally:
            for module, name, value in patched:
                setattr(module, name, value)
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _patch_legacy_paths(values: Mapping[str, str]) -> list[tuple[object, str, object]]:
    """For nnunetv2 < 2.6 only: swap the import-time path strings in every loaded module."""
    import nnunetv2.paths

    if hasattr(nnunetv2.paths.nnUNet_raw, "get"):  # lazy _EnvPath: the environment suffices
        return []
    patched = []
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("nnunetv2") or module is None:
            continue
        for name in PATH_VARIABLES:
            current = getattr(module, name, _MISSING)
            if current is _MISSING or not (current is None or isinstance(current, str)):
                continue
            patched.append((module, name, current))
            setattr(module, name, values[name])
    return patched


_MISSING = object()


def write_raw_dataset(
    workspace: Workspace,
    cases: Sequence[LabelledCase],
    channels: Sequence[str],
    cache_dir: Path,
) -> None:
    """nnU-Net's raw layout of `cases`, by symlinks (no pixels copied where the OS allows).

    imagesTr/<case>_<channel>.nii.gz and labelsTr/<case>.nii.gz (the reference rater's mask);
    derived channels (the mirror) are computed once into `cache_dir` and linked from there,
    and so are compressed copies of uncompressed `.nii` files (see `_gzipped`).
    """
    root = workspace.raw_dataset
    for case in cases:
        files = channel_files(case.image, channels, cache_dir)
        for index, source in enumerate(files):
            _link(_gzipped(source, cache_dir), root / "imagesTr" / f"{case.id}_{index:04d}.nii.gz")
        _link(_gzipped(case.label, cache_dir), root / "labelsTr" / f"{case.id}.nii.gz")
    write_json(
        {
            "channel_names": {str(i): "CT" for i in range(len(channels))},
            "labels": {"background": 0, "lesion": 1},
            "numTraining": len(cases),
            "file_ending": ".nii.gz",
            "overwrite_image_reader_writer": "SimpleITKIO",
            "name": "NCCT Stroke Bench",
            "description": f"written by bench; channels: {', '.join(channels)}",
        },
        root / "dataset.json",
    )


def _gzipped(source: Path, cache_dir: Path) -> Path:
    """`source` itself when it is gzip-compressed, else a `.nii.gz` copy of it in the cache.

    nnU-Net takes one file ending for the whole dataset (`.nii.gz` here), and nibabel decides
    by the name whether to decompress: an uncompressed `.nii` linked as `.nii.gz` cannot be
    read. Datasets imported from `.nii` files link them as they are, so they are compressed
    once here (keyed by content, written atomically, so a rerun reuses them).
    """
    source = Path(source)
    if source.name.lower().endswith(".gz"):
        return source
    digest = sha256_file(source)[:16]
    target = cache_dir / "nii_gz" / f"{source.name.removesuffix('.nii')}-{digest}.nii.gz"
    if not target.is_file():
        with atomic_path(target) as tmp, open(source, "rb") as raw, gzip.open(tmp, "wb") as gz:
            shutil.copyfileobj(raw, gz)
    return target


def _link(source: Path, target: Path) -> None:
    """Symlink `target` to `source`, replacing a stale link; copy where symlinks fail."""
    source = Path(source).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        if target.is_symlink() and Path(os.readlink(target)) == source:
            return
        target.unlink()
    try:
        target.symlink_to(source)
    except OSError:  # e.g. a file system without symlinks
        shutil.copyfile(source, target)


def write_splits_final(
    workspace: Workspace, folds: Sequence[FoldIds], with_additional: bool = False
) -> Path:
    """The fixed split as nnU-Net's splits_final.json: folds in order, 0..n-1, no gaps; with
    `with_additional`, each fold trains on its patients' additional scans too.

    nnU-Net silently falls back to a random 80:20 split when a fold is missing; the bench
    trainer refuses instead (see `BenchTrainer.do_split`), and this file must be complete.
    """
    entries = []
    for expected, fold in enumerate(folds):
        if fold.fold != expected:
            raise BenchError(f"the split's folds must be numbered 0..n-1; found {fold.fold}")
        train = (*fold.train, *(fold.train_additional if with_additional else ()))
        entries.append({"train": sorted(train), "val": sorted(fold.val)})
    path = workspace.preprocessed_dataset / "splits_final.json"
    write_json(entries, path)
    return path
