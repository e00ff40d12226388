"""`bench data phantom` (build the digital phantom) and `bench data show` (montage PNG).

`bench.cli.data_cmd` calls `add_phantom_parsers` on its `data` subparsers. Heavy imports
(numpy, SimpleITK, nilearn, matplotlib) happen inside the run functions.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_phantom_parsers(data_subparsers: argparse._SubParsersAction) -> None:
    from bench.data.phantom.profiles import DEFAULT_PROFILE, PROFILES

    phantom = data_subparsers.add_parser(
        "phantom",
        help="build the deterministic NCCT stroke phantom (the default dataset)",
        description="Build the digital NCCT stroke phantom as a bench dataset v1 folder: "
        "images, labels of raters A, B, C and the hidden truth, dataset.json, splits.json. "
        "The same profile, patient count and seed always give the same files.",
    )
    phantom.add_argument("--out", type=Path, required=True, help="output dataset folder")
    phantom.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=DEFAULT_PROFILE,
        help=f"size and resolution (default {DEFAULT_PROFILE}): "
        + "; ".join(
            f"{p.name}: {p.n_patients} patients, {p.matrix}x{p.matrix} at {p.inplane_mm:g} mm, "
            f"{p.n_slices} x {p.slice_mm:g} mm slices"
            for p in PROFILES.values()
        ),
    )
    phantom.add_argument(
        "--patients", type=int, default=None, help="number of patients (default: the profile's)"
    )
    phantom.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    phantom.add_argument("--quiet", action="store_true", help="no progress bar")
    phantom.set_defaults(func=run_phantom)

    show = data_subparsers.add_parser(
        "show", help="montage PNG of a case with every rater's contour (and the truth)"
    )
    show.add_argument("path", type=Path, help="dataset folder (holds dataset.json)")
    show.add_argument("case", help="case id, e.g. ph0000")
    show.add_argument("--out", type=Path, required=True, help="PNG file to write")
    show.add_argument("--slices", type=int, default=4, help="slices in the montage (default 4)")
    show.set_defaults(func=run_show)


def run_phantom(args: argparse.Namespace) -> int:
    from bench.data.phantom import build_phantom
    from bench.errors import InputError

    if args.patients is not None and args.patients < 1:
        raise InputError(f"--patients must be at least 1, got {args.patients}")
    dataset = build_phantom(
        args.out,
        profile=args.profile,
        n_patients=args.patients,
        seed=args.seed,
        progress=not args.quiet,
    )
    patients = len({case.patient for case in dataset.cases})
    print(
        f"{dataset.name}: {len(dataset.cases)} cases of {patients} patients in {dataset.root} "
        f"(content_sha256 {str(dataset.content_sha256)[:12]})"
    )
    return 0


def run_show(args: argparse.Namespace) -> int:
    from bench.data.phantom.show import render_case
    from bench.errors import InputError

    if args.slices < 1:
        raise InputError(f"--slices must be at least 1, got {args.slices}")
    path = render_case(args.path, args.case, args.out, n_slices=args.slices)
    print(f"wrote {path}")
    return 0
