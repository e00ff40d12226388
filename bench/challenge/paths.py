"""Which folders the child must not see, and which it needs (so hiding them is an error).

Hidden, fail closed: the `--images` folder, its dataset root when it has a `dataset.json`
(the labels and the manifest live there) and every `--hide` folder. Covered where possible:
the organiser's home and the usual Unix-socket folders. Needed: the Python installation, the
harness's code, the submission, the model and the sandbox; a hidden folder that holds one of
them cannot be covered without breaking the child, so that is the organiser's error to fix.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import bench
from bench.challenge.sandbox import SOCKET_FOLDERS
from bench.errors import BenchError

DATASET_MANIFEST = "dataset.json"


def harness_import_root() -> Path:
    """The folder from which `import bench` works (the repository for an editable install)."""
    return Path(bench.__file__).resolve().parent.parent


def needed_paths(submission: Path, model: Path, sandbox: Path) -> dict[str, Path]:
    python = Path(sys.executable).resolve()
    return {
        "the Python environment": Path(sys.prefix).resolve(),
        "the Python installation": Path(sys.base_prefix).resolve(),
        "the Python interpreter": python.parent,
        "the harness's code": harness_import_root(),
        "the submission": submission.resolve(),
        "the model": model.resolve(),
        "the sandbox": sandbox.resolve(),
    }


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def outermost(paths: Iterable[Path]) -> list[Path]:
    """Distinct paths, without those inside another one (covering the outer one covers them)."""
    unique = sorted({Path(p) for p in paths}, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in unique:
        if not any(_inside(path, outer) for outer in kept):
            kept.append(path)
    return kept


def hidden_paths(images: Path, extra: Sequence[Path], needed: dict[str, Path]) -> list[Path]:
    """The folders to cover; one that holds something the child needs is a BenchError."""
    images = images.resolve()
    wanted = [images, *(Path(p).resolve() for p in extra)]
    if (images.parent / DATASET_MANIFEST).is_file():
        wanted.append(images.parent)
    for path in wanted:
        if not path.exists():
            raise BenchError(f"{path}: the folder to hide does not exist")
        for what, need in needed.items():
            if _inside(need, path):
                raise BenchError(
                    f"{path} cannot be hidden from the submission: it holds {what} ({need}); "
                    "keep the dataset apart from the harness, the submission and the model"
                )
    return outermost(wanted)


def best_effort_paths(
    hidden: Sequence[Path], needed: dict[str, Path]
) -> tuple[list[Path], list[str]]:
    """The organiser's home and the socket folders, where they exist and hold nothing needed."""
    kept, notes = [], []
    for candidate in (Path.home(), *(Path(p) for p in SOCKET_FOLDERS)):
        if not candidate.is_dir():
            continue
        path = candidate.resolve()
        if any(_inside(path, h) for h in hidden) or path in kept:
            continue
        holds = [what for what, need in needed.items() if _inside(need, path)]
        if holds:
            notes.append(f"{path} stays visible to the submission: it holds {holds[0]}")
            continue
        kept.append(path)
    return outermost(kept), notes
