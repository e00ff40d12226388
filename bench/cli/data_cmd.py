"""`bench data ...`: validate a dataset, make its fixed split (and build the phantom)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.errors import ValidationError


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser(
        "data", help="dataset tools: phantom, show, import, validate, split"
    )
    data_sub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)

    validate = data_sub.add_parser(
        "validate", help="read every file of a dataset and report every problem"
    )
    validate.add_argument("path", type=Path, help="dataset folder (holds dataset.json)")
    validate.add_argument("--quiet", action="store_true", help="no progress bar")
    validate.set_defaults(func=run_validate)

    split = data_sub.add_parser("split", help="write the fixed 5-fold patient-level split")
    split.add_argument("path", type=Path, help="dataset folder (holds dataset.json)")
    split.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    split.add_argument("--seed", type=int, default=0, help="shuffle seed (default 0)")
    split.add_argument(
        "--force", action="store_true", help="replace an existing splits.json that differs"
    )
    split.set_defaults(func=run_split)

    from bench.cli.data_import_cmd import add_import_parser
    from bench.cli.data_phantom_cmd import add_phantom_parsers

    add_import_parser(data_sub)
    add_phantom_parsers(data_sub)


def run_validate(args: argparse.Namespace) -> int:
    from bench.data.dataset import load_dataset
    from bench.data.validate import validate_dataset

    dataset = load_dataset(args.path)
    problems = validate_dataset(dataset, progress=not args.quiet)
    if problems:
        raise ValidationError(problems)
    n_patients = len({case.patient for case in dataset.cases})
    print(
        f"{dataset.name}: {len(dataset.cases)} cases, {n_patients} patients, "
        f"raters {', '.join(dataset.raters)} (reference {dataset.reference_rater})"
        + (f", truth {dataset.truth!r}" if dataset.truth else "")
        + ": valid"
    )
    return 0


def run_split(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from bench.data.dataset import SPLITS_NAME, load_dataset
    from bench.errors import InputError
    from bench.splits import load_split, make_split, write_split

    dataset = load_dataset(args.path)
    if args.folds < 2:
        raise InputError(f"--folds must be at least 2, got {args.folds}")
    split = make_split(dataset, n_folds=args.folds, seed=args.seed)
    existing = dataset.root / SPLITS_NAME
    if existing.is_file() and not args.force:
        try:
            same = load_split(dataset).split_sha256 == split.split_sha256
        except InputError:
            same = False
        if not same:
            raise InputError(
                "a different split already exists; the split is frozen (use --force to replace)",
                file=existing,
            )
    path = write_split(dataset, split)
    rows = []
    for fold in split.folds:
        strata = [split.strata[case] for case in fold.val]
        rows.append(
            (
                fold.fold,
                len(fold.train),
                len(fold.train_additional),
                len(fold.val),
                strata.count("empty"),
                strata.count("small"),
                strata.count("large"),
            )
        )
    headers = ("fold", "train", "extra scans", "val", "val empty", "val small", "val large")
    print(tabulate(rows, headers=headers))
    print(f"wrote {path} (split_sha256 {split.split_sha256[:12]})")
    return 0
