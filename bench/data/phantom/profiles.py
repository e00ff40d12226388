"""Phantom profiles: how big, how fine and how many (configuration as data, one table).

`smoke` is for tests (seconds), `demo` is the default dataset a CPU can train nnU-Net on,
`paper` matches the study's scans (512 x 512 at ~0.47 mm in-plane, 5 mm slices, 200 patients).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.errors import InputError


@dataclass(frozen=True)
class PhantomProfile:
    name: str
    n_patients: int
    # MNI152 template resolution the anatomy is built at (nilearn ships 1 mm and 2 mm).
    template_resolution_mm: int
    # Output grid: matrix (ny, nx) at `inplane_mm`, `n_slices` axial slices of `slice_mm`.
    matrix: int
    inplane_mm: float
    n_slices: int
    slice_mm: float
    # Head-frame (MNI) height the slab stack is centred on before the head's pose is applied.
    z_center_mni_mm: float
    # Each thick slice averages this many thin sub-slices (slab integration, not point sampling).
    subslices: int
    # One patient in every `block` has no visible lesion, one other gets a second scan.
    block: int


PROFILES: dict[str, PhantomProfile] = {
    p.name: p
    for p in (
        PhantomProfile(
            name="smoke",
            n_patients=8,
            template_resolution_mm=2,
            matrix=60,
            inplane_mm=4.0,
            n_slices=12,
            slice_mm=5.0,
            z_center_mni_mm=15.0,
            subslices=2,
            block=4,
        ),
        PhantomProfile(
            name="demo",
            # The cohort trades the tests' power against `make demo`'s time (docs/data.md).
            n_patients=120,
            template_resolution_mm=2,
            matrix=128,
            inplane_mm=1.875,
            n_slices=32,
            slice_mm=5.0,
            z_center_mni_mm=20.0,
            subslices=4,
            block=10,
        ),
        PhantomProfile(
            name="paper",
            n_patients=200,
            template_resolution_mm=1,
            matrix=512,
            inplane_mm=0.46875,
            n_slices=32,
            slice_mm=5.0,
            z_center_mni_mm=20.0,
            subslices=4,
            block=10,
        ),
    )
}
DEFAULT_PROFILE = "demo"


def get_profile(name: str) -> PhantomProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise InputError(
            f"unknown phantom profile {name!r} (choose from {', '.join(PROFILES)})"
        ) from None
