"""Take the child's masks out of its sandbox: only `<case>.nii.gz`, only plain files, checked.

The child's output folder is the submission's to fill, so nothing in it is trusted: a
symlink (which could point at a label), a folder, a file too large, a file that is not a
NIfTI mask on the case image's exact grid, or one with values other than 0 and 1 makes the
case `malformed`. Everything else in the folder is ignored. A mask passes through a private
copy first, so what is checked is what lands in the output folder.
"""

from __future__ import annotations

import gzip
import os
import shutil
import stat
import zlib
from pathlib import Path

import numpy as np

from bench.errors import BenchError
from bench.io import Geometry, read_geometry

MAX_MASK_BYTES = 256 << 20
NIFTI_HEADER_BYTES = 1 << 16  # the 352-byte header plus room for extensions


def check_mask(path: Path, expected: Geometry, case: str) -> str:
    """Why `path` is not a usable mask for `case` (empty string when it is)."""
    from bench.io import read_image

    try:
        geometry = read_geometry(path, case)
        problem = expected.mismatch(geometry, "image")
        if problem:
            return problem
        # Decompress once with a bound before any reader does: no gzip bomb, no truncation.
        limit = NIFTI_HEADER_BYTES + 8 * int(np.prod(expected.shape_zyx))
        problem = _gzip_problem(path, limit)
        if problem:
            return problem
        array, _ = read_image(path, case)
    except BenchError as error:
        finding = getattr(error, "finding", None)
        return finding.problem if finding else str(error)
    values = np.unique(array)
    if not np.isin(values, (0, 1)).all():
        return f"mask values must be 0 and 1, found {values[:5].tolist()}"
    return ""


def _gzip_problem(path: Path, limit_bytes: int) -> str:
    total = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(1 << 22):
                total += len(chunk)
                if total > limit_bytes:
                    return "holds more data than a mask on the image's grid"
    except (OSError, EOFError, zlib.error) as error:
        return f"is not a complete gzip-compressed NIfTI ({error})"
    return ""


def take_mask(source: Path, target: Path, expected: Geometry, case: str) -> str:
    """Copy `source` to `target` if it is a good mask; return why not otherwise."""
    try:
        info = os.lstat(source)
    except FileNotFoundError:
        return "missing"
    if stat.S_ISLNK(info.st_mode):
        return "malformed: the output is a symbolic link, not a file"
    if not stat.S_ISREG(info.st_mode):
        return "malformed: the output is not a plain file"
    if info.st_size > MAX_MASK_BYTES:
        return f"malformed: the output is larger than {MAX_MASK_BYTES >> 20} MB"
    staging = target.with_name(f".partial-{target.name}")  # readers go by the .nii.gz suffix
    try:
        try:
            _copy_no_follow(source, staging)
        except OSError as error:
            return f"malformed: cannot be copied as a plain file ({error.strerror or error})"
        problem = check_mask(staging, expected, case)
        if problem:
            return f"malformed: {problem}"
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
    return ""


def _copy_no_follow(source: Path, target: Path) -> None:
    """Copy a file without following a symlink swapped in after the check (O_NOFOLLOW)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)  # a FIFO must not block
    descriptor = os.open(source, flags)
    with os.fdopen(descriptor, "rb") as reader, open(target, "wb") as writer:
        if not stat.S_ISREG(os.fstat(reader.fileno()).st_mode):
            raise OSError("not a plain file")
        shutil.copyfileobj(reader, writer)
