"""`bench data import LAYOUT SOURCE --out DIR`: another layout in, dataset v1 + split out.

`add_import_parser(data_subparsers)` is called by `bench.cli.data_cmd`; each layout is its own
sub-command so that `--help` lists only the options that layout understands.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.data.importers import LAYOUTS
from bench.errors import InputError


def add_import_parser(data_subparsers: argparse._SubParsersAction) -> None:
    parser = data_subparsers.add_parser(
        "import",
        help="import another layout (nnU-Net raw, rater folders, DICOM, AISD, ISLES'24)",
        description="Turn a dataset in another layout into dataset v1: pixels are linked "
        "(symlinks), not copied, where the format allows; DICOM and PNG are converted to "
        "NIfTI. The result is validated, its fixed split written and a summary printed.",
    )
    layouts = parser.add_subparsers(dest="layout", metavar="LAYOUT", required=True)
    for name, (_, description) in LAYOUTS.items():
        sub = layouts.add_parser(name, help=description, description=description)
        _add_common(sub)
        for add in LAYOUT_OPTIONS[name]:
            add(sub)
        sub.set_defaults(func=run_import)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, metavar="SOURCE", help="the folder to import")
    parser.add_argument("--out", type=Path, required=True, help="dataset folder to create")
    parser.add_argument("--copy", action="store_true", help="copy files instead of symlinking")
    parser.add_argument("--name", help="dataset name (default: from the source)")
    parser.add_argument(
        "--csv", type=Path, help="CSV with columns case, patient, scan_index[, laterality]"
    )
    parser.add_argument("--license", help="licence recorded in the manifest")
    parser.add_argument(
        "--lesion-values",
        help="stored label values that count as lesion, e.g. 1,2,3,5 (layout default)",
    )
    parser.add_argument(
        "--label-values", help="every value a mask may hold, e.g. 0-5 (layout default)"
    )
    parser.add_argument(
        "--skip-invalid",
        action="store_true",
        help="skip (and list) cases with bad input instead of stopping at the first",
    )
    parser.add_argument("--force", action="store_true", help="replace the dataset already in --out")
    parser.add_argument("--folds", type=int, default=5, help="split folds (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _rater(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rater", default="A", help="name of the single rater (default A)")


def _raters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--raters",
        help="comma-separated label folders to use, optionally renamed: A=reader1,B=reader2 "
        "(default: every sub-folder of the labels folder, named after it)",
    )
    parser.add_argument("--reference-rater", help="the rater models train on (default: the first)")


def _folders(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images-dir", default="images", help="image folder (default images)")
    parser.add_argument("--labels-dir", default="labels", help="label folder (default labels)")


def _tilt(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-tilt",
        action="store_true",
        help="import gantry-tilted series as acquired (sheared) instead of stopping",
    )


def _nifti_headers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--nifti-transform",
        choices=("qform", "sform"),
        help="where a NIfTI file's qform and sform disagree, trust this one (the file is "
        "rewritten with it); without it such a file stops the import",
    )
    parser.add_argument(
        "--copy-image-header",
        action="store_true",
        help="a mask with its image's shape but another header (beyond the grid tolerance) "
        "gets the image's header, as nnU-Net assumes; each one is listed",
    )


def _masks_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--masks-dir", default="mask", help="PNG mask folder (default mask)")


LAYOUT_OPTIONS = {
    "nnunet": (_rater, _nifti_headers),
    "folders": (_folders, _rater, _raters, _nifti_headers),
    "dicom": (_folders, _rater, _raters, _tilt, _nifti_headers),
    "aisd": (_masks_dir, _rater, _tilt),
    "isles24": (_rater, _nifti_headers),
}


def options_from(args: argparse.Namespace):
    """The library's ImportOptions from parsed arguments (one place maps flags to options)."""
    from bench.data.importers.common import ImportOptions, parse_int_list

    if args.folds < 2:
        raise InputError(f"--folds must be at least 2, got {args.folds}")
    raters = getattr(args, "raters", None)
    return ImportOptions(
        copy=args.copy,
        name=args.name,
        csv=args.csv,
        rater=args.rater,
        raters=tuple(r.strip() for r in raters.split(",") if r.strip()) if raters else (),
        reference_rater=getattr(args, "reference_rater", None),
        lesion_values=parse_int_list(args.lesion_values) if args.lesion_values else None,
        label_values=parse_int_list(args.label_values) if args.label_values else None,
        license=args.license,
        images_dir=getattr(args, "images_dir", None),
        labels_dir=getattr(args, "labels_dir", None) or getattr(args, "masks_dir", None),
        allow_tilt=getattr(args, "allow_tilt", False),
        nifti_transform=getattr(args, "nifti_transform", None),
        copy_image_header=getattr(args, "copy_image_header", False),
        skip_invalid=args.skip_invalid,
        force=args.force,
        n_folds=args.folds,
        seed=args.seed,
        progress=not args.quiet,
    )


def run_import(args: argparse.Namespace) -> int:
    from bench.data.importers import import_dataset
    from bench.data.importers.summary import format_summary

    result = import_dataset(args.layout, args.source, args.out, options_from(args))
    print(format_summary(result.summary))
    print(
        f"\nwrote {result.dataset.root} ({len(result.dataset.cases)} cases, "
        f"content_sha256 {str(result.dataset.content_sha256)[:12]}) and its split "
        f"{result.split_path.name}; use it with: bench run --dataset {result.dataset.root}"
    )
    return 0
