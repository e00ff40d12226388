"""Images into the sandbox and masks out of it, never through a path the child could change.

The sandbox's `input/` and `output/` folders are opened (`O_DIRECTORY | O_NOFOLLOW`) by the
parent right after it made them, before any child ran, and every later file operation goes
through those descriptors by name (`openat` with `O_NOFOLLOW`): a child that renames a folder
and puts a symlink in its place, anywhere on the path, is not followed, and the harness
reads and writes only the folders it made. (Python has no `openat2(RESOLVE_BENEATH)`; one
name under a descriptor needs nothing more.)

The child's output folder is the submission's to fill, so nothing in it is trusted: a
symlink, a hard link, a folder, a file too large, a file that is not a NIfTI mask on the
case image's exact grid, or one with values other than 0 and 1 (NaN included) makes the
case `malformed`. Everything else in the folder is ignored. A mask passes through a private
copy first, so what is checked is what lands in the output folder.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import os
import shutil
import stat
import zlib
from pathlib import Path

import numpy as np

from bench.errors import BenchError
from bench.io import Geometry, count_non_finite, read_geometry

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
        if np.issubdtype(array.dtype, np.floating) and count_non_finite(path):
            # SimpleITK reads a stored NaN as 0: ask nibabel for the stored values.
            return "mask values must be 0 and 1, found NaN or Inf"
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


_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)


class SandboxFolders:
    """The sandbox's input and output folders, held open from before the child ran."""

    def __init__(self, input_dir: Path, output_dir: Path):
        flags = os.O_RDONLY | os.O_DIRECTORY | _NO_FOLLOW
        self.input_fd = os.open(input_dir, flags)
        self.output_fd = os.open(output_dir, flags)

    def close(self) -> None:
        os.close(self.input_fd)
        os.close(self.output_fd)

    def give(self, case: str, image: Path) -> str:
        """Copy the case's image into `input/`; why not, or "" when it is there."""
        name = f"{case}.nii.gz"
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=self.input_fd)  # whatever the child left under that name
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_FOLLOW
            descriptor = os.open(name, flags, 0o644, dir_fd=self.input_fd)
            with open(image, "rb") as reader, os.fdopen(descriptor, "wb") as writer:
                shutil.copyfileobj(reader, writer)
        except OSError as error:
            return f"the image could not be put into the sandbox's input folder ({error.strerror})"
        return ""

    def take(self, case: str, target: Path, expected: Geometry) -> str:
        """Copy the case's mask from `output/` to `target` if it is a good mask; why not."""
        staging = target.with_name(f".partial-{target.name}")  # readers go by the .nii.gz suffix
        try:
            problem = self._copy_out(f"{case}.nii.gz", staging)
            if problem:
                return problem
            problem = check_mask(staging, expected, case)
            if problem:
                return f"malformed: {problem}"
            os.replace(staging, target)
        finally:
            staging.unlink(missing_ok=True)
        return ""

    def _copy_out(self, name: str, target: Path) -> str:
        flags = os.O_RDONLY | os.O_NONBLOCK | _NO_FOLLOW  # a FIFO must not block
        try:
            descriptor = os.open(name, flags, dir_fd=self.output_fd)
        except FileNotFoundError:
            return "missing"
        except OSError as error:
            if error.errno == errno.ELOOP:
                return "malformed: the output is a symbolic link, not a file"
            return f"malformed: cannot be opened as a plain file ({error.strerror})"
        with os.fdopen(descriptor, "rb") as reader:
            info = os.fstat(reader.fileno())
            if not stat.S_ISREG(info.st_mode):
                return "malformed: the output is not a plain file"
            if info.st_nlink != 1:
                return f"malformed: the output is a hard link ({info.st_nlink} names)"
            if info.st_size > MAX_MASK_BYTES:
                return f"malformed: the output is larger than {MAX_MASK_BYTES >> 20} MB"
            with open(target, "wb") as writer:
                shutil.copyfileobj(reader, writer)
        return ""
