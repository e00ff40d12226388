"""NIfTI files whose two transforms disagree: found, named, and resolved only when told.

A NIfTI header can hold two voxel-to-world transforms, the qform and the sform, each with a
code saying whether it is set. Readers choose differently: nibabel (and so most Python tools)
takes the sform whenever its code is set; ITK (SimpleITK, ITK-SNAP, nnU-Net's SimpleITKIO)
takes the qform unless the sform's code is 1 (scanner) or the qform's is 0. Where the two
transforms disagree the same file lies in two places depending on the tool, and a mask can
"match" its image in one tool only. So a disagreement beyond the grid tolerance (see
`grid.py`) is an error naming both origins, unless `--nifti-transform qform|sform` says which
to trust; the file is then rewritten with that transform alone in both fields.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.data.importers.grid import GRID_TOLERANCE_VOXELS, offset_voxels, show_difference
from bench.errors import InputError
from bench.io import Geometry

TRANSFORMS = ("qform", "sform")
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


def trusted_geometry(
    path: Path, case: str, read: Geometry, trust: str | None
) -> tuple[Geometry, str] | None:
    """The geometry to write `path` with, and why, where its qform and sform disagree.

    None where the file is not NIfTI, sets only one transform, or both agree within the
    tolerance: SimpleITK's reading (`read`) is then what every tool reads.
    """
    if trust not in (None, *TRANSFORMS):
        raise InputError(f"--nifti-transform must be qform or sform, got {trust!r}")
    if not path.name.lower().endswith((".nii", ".nii.gz")):
        return None
    import nibabel

    try:
        header = nibabel.load(str(path)).header
    except Exception as error:  # nibabel raises several types for damaged files
        raise InputError(f"cannot be read as NIfTI ({type(error).__name__})", case, path) from error
    qform, q_code = header.get_qform(coded=True)
    sform, s_code = header.get_sform(coded=True)
    if not q_code or not s_code:
        return None
    shape_xyz = tuple(int(n) for n in header.get_data_shape()[:3])
    offset = offset_voxels(qform[:3], sform[:3], shape_xyz)
    if offset <= GRID_TOLERANCE_VOXELS:
        return None
    origins = {"qform": _lps(qform)[:, 3], "sform": _lps(sform)[:, 3]}
    itk_reads = min(TRANSFORMS, key=lambda t: np.abs(origins[t] - read.origin_xyz).max())
    same = "(" + ", ".join(f"{v:.2f}" for v in origins["qform"].tolist()) + ")"
    shown = show_difference(origins["qform"], origins["sform"])
    q_origin, s_origin = shown[:2] if shown else (same, f"{same} (the axes differ)")
    found = (
        f"qform (code {int(q_code)}) and sform (code {int(s_code)}) disagree: qform origin "
        f"{q_origin} mm, sform origin {s_origin} mm (LPS), "
        f"{float(np.linalg.norm(origins['sform'] - origins['qform'])):.4g} mm apart, voxel "
        f"centres up to {offset:.3g} voxel apart (tolerance {GRID_TOLERANCE_VOXELS}); "
        f"SimpleITK reads the {itk_reads}, nibabel the sform"
    )
    if trust is None:
        raise InputError(
            f"{found}: say which to trust with --nifti-transform qform|sform", case, path
        )
    geometry = _geometry(qform if trust == "qform" else sform, read.shape_zyx)
    if geometry is None:
        raise InputError(
            f"{found}; the {trust} is sheared, which NIfTI readers differ on", case, path
        )
    return geometry, f"{found}; written with the {trust} (--nifti-transform {trust})"


def _lps(affine: np.ndarray) -> np.ndarray:
    return RAS_TO_LPS @ np.asarray(affine, float)[:3]


def _geometry(affine: np.ndarray, shape_zyx: tuple[int, ...]) -> Geometry | None:
    """The ITK geometry of a RAS affine; None for a sheared one (ITK cannot hold it)."""
    lps = _lps(affine)
    spacing = np.linalg.norm(lps[:, :3], axis=0)
    direction = lps[:, :3] / spacing
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-6):
        return None
    return Geometry(
        shape_zyx=tuple(shape_zyx),
        spacing_xyz=tuple(float(v) for v in spacing),
        origin_xyz=tuple(float(v) for v in lps[:, 3]),
        direction=tuple(float(v) for v in direction.ravel()),
    )
