"""NIfTI reading and atomic writing through SimpleITK, with the geometry kept explicit.

Arrays are always (z, y, x), as SimpleITK's `GetArrayFromImage` returns them; SimpleITK's own
spacing, origin and direction are (x, y, z). `Geometry` carries both orders by name so that no
caller ever passes a spacing tuple in the wrong order (a silent 10x error in every peer library).
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import os
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from bench.errors import InputError

# Geometry comparisons tolerate float noise from header round-trips, not real differences.
GEOMETRY_ATOL = 1e-4


@dataclass(frozen=True)
class Geometry:
    """Where an array lives in the scanner's physical space (LPS, mm)."""

    shape_zyx: tuple[int, ...]
    spacing_xyz: tuple[float, ...]
    origin_xyz: tuple[float, ...]
    direction: tuple[float, ...]

    @property
    def spacing_zyx_mm(self) -> tuple[float, ...]:
        return tuple(reversed(self.spacing_xyz))

    @property
    def voxel_volume_ml(self) -> float:
        return float(np.prod(self.spacing_xyz)) / 1000.0

    @classmethod
    def of(cls, image: sitk.Image) -> Geometry:
        return cls(
            shape_zyx=tuple(reversed(image.GetSize())),
            spacing_xyz=tuple(image.GetSpacing()),
            origin_xyz=tuple(image.GetOrigin()),
            direction=tuple(image.GetDirection()),
        )

    def mismatch(self, other: Geometry, name: str = "image") -> str | None:
        """Describe the first way `other` lies on a different grid, or None if it matches."""
        if tuple(self.shape_zyx) != tuple(other.shape_zyx):
            return (
                f"shape {tuple(other.shape_zyx)} differs from the {name}'s "
                f"{tuple(self.shape_zyx)} (z, y, x)"
            )
        for label, mine, theirs in (
            ("spacing", self.spacing_xyz, other.spacing_xyz),
            ("origin", self.origin_xyz, other.origin_xyz),
            ("direction", self.direction, other.direction),
        ):
            if not np.allclose(mine, theirs, atol=GEOMETRY_ATOL, rtol=0):
                return f"{label} {_fmt(theirs)} differs from the {name}'s {_fmt(mine)}"
        return None

    def apply_to(self, image: sitk.Image) -> sitk.Image:
        image.SetSpacing(self.spacing_xyz)
        image.SetOrigin(self.origin_xyz)
        image.SetDirection(self.direction)
        return image


def _fmt(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def read_sitk(path: str | Path, case: str | None = None) -> sitk.Image:
    """Read an image, turning SimpleITK's multi-line exceptions into one clear line."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file is missing", case, path)
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as error:
        reason = str(error).strip().splitlines()
        detail = next((line for line in reason if "ERROR" in line or "rror" in line), "")
        raise InputError(
            f"cannot be read as an image (corrupted or not NIfTI) {detail[:120]}".strip(),
            case,
            path,
        ) from error


def read_image(path: str | Path, case: str | None = None) -> tuple[np.ndarray, Geometry]:
    """Read an image as a (z, y, x) array with its geometry."""
    image = read_sitk(path, case)
    return sitk.GetArrayFromImage(image), Geometry.of(image)


def count_non_finite(path: str | Path) -> int:
    """NaN/Inf voxels stored in a float NIfTI file (0 for integer files).

    SimpleITK's NIfTI reader silently turns NaN into 0 (measured with SimpleITK 2.5), so a
    NaN in a user's image or mask would go unnoticed; nibabel reads the stored values as they are.
    """
    import nibabel

    try:
        image = nibabel.load(str(path))
        if not np.issubdtype(image.get_data_dtype(), np.floating):
            return 0
        return int(np.count_nonzero(~np.isfinite(np.asarray(image.dataobj))))
    except Exception as error:  # nibabel raises several types for damaged files
        raise InputError(f"cannot be read as NIfTI ({type(error).__name__})", file=path) from error


def check_complete(path: str | Path, case: str | None = None) -> None:
    """Raise InputError if a gzip-compressed file is truncated or damaged.

    SimpleITK reads a truncated `.nii.gz` without complaint and fills the missing voxels with
    zeros (measured with SimpleITK 2.5), so validation decompresses the whole stream once.
    """
    path = Path(path)
    if not path.name.endswith(".gz"):
        return
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(1 << 22):
                pass
    except (OSError, EOFError, zlib.error) as error:
        raise InputError(f"is truncated or damaged ({error})", case, path) from error


def read_geometry(path: str | Path, case: str | None = None) -> Geometry:
    """Read only the header (cheap: no pixel decoding)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file is missing", case, path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:
        raise InputError(
            "cannot be read as an image (corrupted or not NIfTI)", case, path
        ) from error
    return Geometry(
        shape_zyx=tuple(reversed(reader.GetSize())),
        spacing_xyz=tuple(reader.GetSpacing()),
        origin_xyz=tuple(reader.GetOrigin()),
        direction=tuple(reader.GetDirection()),
    )


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path; on success rename it over `path` (never half-written).

    The temporary name keeps the final suffixes so that writers choosing a format by
    extension (SimpleITK: `.nii.gz`) still do the right thing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_temporaries(folder: str | Path, name: str = "*") -> list[Path]:
    """Delete what `atomic_path` left in `folder` when its process died mid-write (kill -9,
    out of memory); `name` narrows it to one target's leftovers. Returns what was deleted.

    Call it only where this process is the sole writer of those targets: another writer's
    temporary file is in use until its rename.
    """
    pattern = ".*.*.tmp*"  # atomic_path's `.<name>.<random>.tmp<suffixes>`
    if name != "*":
        suffix = "".join(Path(name).suffixes)
        pattern = f".{glob.escape(name)}.*.tmp{glob.escape(suffix)}"
    removed = []
    for path in sorted(Path(folder).glob(pattern)):
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def write_image(array: np.ndarray, geometry: Geometry, path: str | Path) -> None:
    """Write a (z, y, x) array on `geometry` as NIfTI, atomically."""
    if tuple(array.shape) != tuple(geometry.shape_zyx):
        raise ValueError(f"array shape {array.shape} does not match geometry {geometry.shape_zyx}")
    image = geometry.apply_to(sitk.GetImageFromArray(array))
    with atomic_path(path) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)


def read_json_object(path: str | Path, missing: str = "file is missing") -> dict[str, Any]:
    """A JSON file that must hold an object; every way it can fail is one InputError line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(missing, file=path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        # ValueError: JSONDecodeError, and integers past Python's 4,300-digit limit.
        detail = (str(error) or type(error).__name__).splitlines()[0][:200]
        raise InputError(f"is not valid JSON ({detail})", file=path) from error
    if not isinstance(data, dict):
        raise InputError("must hold a JSON object", file=path)
    return data


def write_text(text: str, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(data: bytes, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(data: Any, path: str | Path) -> None:
    """Deterministic JSON (sorted keys, fixed indentation), written atomically."""
    write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", path)


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()
