"""`bench evaluate`: score two folders of masks, or a whole study, into a per-case CSV.

Two forms:
  bench evaluate --reference DIR --test DIR --out FILE.csv       (the published evaluator's input)
  bench evaluate --dataset DIR --predictions DIR [--method NAME] --out FILE.csv
Both print the median of every metric per (reference, test) and the image-level table. With
predictions, a dataset with a split is scored on the validation cases of the folds predicted
(second scans are training-only and never predicted), as `bench run` and `bench score` do.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tabulate import tabulate

from bench.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score masks against references (two folders, or a dataset and predictions)",
        description="Score every (reference, test) pair into a per-case CSV and print a summary.",
    )
    folders = parser.add_argument_group("two folders of NIfTI masks with matching file names")
    folders.add_argument("--reference", type=Path, metavar="DIR", help="reference masks")
    folders.add_argument("--test", type=Path, metavar="DIR", help="test masks")
    study = parser.add_argument_group("a study: every rater, truth and the method, all pairs")
    study.add_argument("--dataset", type=Path, metavar="DIR", help="a bench dataset (v1)")
    study.add_argument("--predictions", type=Path, metavar="DIR", help="<case>.nii.gz masks")
    study.add_argument(
        "--method",
        help="name of the predictions (default: the folder's name; <method> for a run's "
        "predictions/<method>/<profile> folder)",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="FILE.csv", help="per-case CSV")
    parser.add_argument(
        "--threshold-ml",
        type=float,
        default=20.0,
        metavar="X",
        help="image-level lesion volume threshold in ml (default: 20)",
    )
    parser.add_argument(
        "--small-ml",
        type=float,
        default=0.0,
        metavar="X",
        help="overlap and distance metrics are NaN at or below this volume (default: 0, empty)",
    )
    parser.add_argument(
        "--compat",
        choices=("off", "use"),
        default="off",
        help="'use': HD95 and ASD as the published UncertainSmallEmpty evaluator computes them",
    )
    parser.add_argument(
        "--same-grid",
        action="store_true",
        help="score masks whose origin or direction differ from the reference's (a tool "
        "dropped the header) on the reference's header; shape and spacing must still match",
    )
    parser.add_argument("--workers", type=int, default=None, help="processes (default: 2)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        metavar="DIR",
        help="per-case cache (default: FILE.cache next to --out; 'none' disables it)",
    )
    parser.set_defaults(func=run)


def _cache_dir(args: argparse.Namespace) -> Path | None:
    if args.cache is None:
        return args.out.with_name(args.out.name.removesuffix(".csv") + ".cache")
    return None if str(args.cache).lower() == "none" else args.cache


def run(args: argparse.Namespace) -> int:
    from bench.evaluate import image_level_table, score_folders, score_study
    from bench.io import write_text

    folder_mode = args.reference is not None or args.test is not None
    study_mode = args.dataset is not None or args.predictions is not None
    if folder_mode == study_mode:
        raise InputError("give either --reference and --test, or --dataset (and --predictions)")
    common = dict(
        cache_dir=_cache_dir(args),
        workers=args.workers,
        small_ml=args.small_ml,
        compat=args.compat,
        same_grid=args.same_grid,
    )
    if folder_mode:
        if args.reference is None or args.test is None:
            raise InputError("--reference and --test go together")
        table = score_folders(args.reference, args.test, **common)
        scope = f"{table['case'].nunique()} cases"
    else:
        from bench.data.dataset import load_dataset

        if args.dataset is None:
            raise InputError("--predictions needs --dataset")
        dataset = load_dataset(args.dataset)
        predictions, cases, note = {}, None, ""
        if args.predictions is not None:
            predictions[args.method or _method_name(args.predictions)] = args.predictions
            cases, note = _validated_cases(dataset, args.predictions)
        table = score_study(dataset, predictions, cases=cases, **common)
        scope = _scope(table["case"].nunique(), len(dataset.cases), note)

    write_text(table.to_csv(index=False, na_rep="NaN"), args.out)
    print(_summary(table))
    print()
    print(_image_level(image_level_table(table, args.threshold_ml)))
    print(f"\nscored {scope}; wrote {len(table)} rows to {args.out}")
    if args.same_grid:
        print(
            "--same-grid: origins and directions were not checked; every mask was scored on "
            "its reference's header (with --dataset: its case's image)"
        )
    return 0


def _method_name(folder: Path) -> str:
    """A run writes `<workdir>/predictions/<method>/<profile>/`: the method, not the profile."""
    folder = folder.resolve()
    return folder.parent.name if folder.parent.parent.name == "predictions" else folder.name


def _validated_cases(dataset, predictions: Path) -> tuple[list[str] | None, str]:
    """The cases to score: the validation cases of every fold the predictions cover (a run
    of some folds predicts only theirs), and how to describe them; (None, "") without a split
    or when every case of the dataset is predicted.

    A fold predicted in part is an error naming a missing case: nothing is dropped silently.
    """
    from bench.data.dataset import SPLITS_NAME
    from bench.evaluate.loading import nifti_files
    from bench.splits import load_split

    if not (dataset.root / SPLITS_NAME).is_file():
        return None, ""
    predicted = set(nifti_files(predictions))
    if predicted >= {case.id for case in dataset.cases}:  # every case, not a run's: score all
        return None, ""
    split = load_split(dataset)
    cases: list[str] = []
    covered, absent = [], []
    for fold in split.folds:
        missing = [case for case in fold.val if case not in predicted]
        if missing and len(missing) < len(fold.val):
            raise InputError(
                f"no prediction for this case, a validation case of fold {fold.fold} "
                f"(predicted for {len(fold.val) - len(missing)} of its {len(fold.val)})",
                missing[0],
                predictions / f"{missing[0]}.nii.gz",
            )
        (absent if missing else covered).append(str(fold.fold))
        cases += [] if missing else fold.val
    if not covered:  # no fold at all: name the first case, as for any missing prediction
        return split.validated_cases(), ""
    note = f"the validation cases of fold {', '.join(covered)}"
    if absent:
        note += f"; fold {', '.join(absent)} not predicted"
    return sorted(set(cases)), note


def _scope(scored: int, in_dataset: int, note: str) -> str:
    if not note:
        return f"{scored} cases"
    return f"{scored} of the dataset's {in_dataset} cases ({note})"


def _summary(table) -> str:
    from bench.metric_names import METRICS

    names = [m.name for m in METRICS]
    medians = table.groupby(["reference", "test"], sort=False)[names].median()
    labels = [f"{m.name} [{m.unit}]" if m.unit else m.name for m in METRICS]
    headers = ["reference", "test", *labels]
    rows = [[*key, *values] for key, values in zip(medians.index, medians.to_numpy(), strict=True)]
    return "median per metric\n" + tabulate(rows, headers=headers, floatfmt=".3f")


def _image_level(image: object) -> str:
    columns = [
        "reference",
        "test",
        "n",
        "positives",
        "sensitivity",
        "specificity",
        "auc",
        "accuracy",
        "detection_rate",
    ]
    threshold = float(image["threshold_ml"].iloc[0]) if len(image) else float("nan")
    body = tabulate(image[columns].to_numpy().tolist(), headers=columns, floatfmt=".3f")
    return f"image level at {threshold:g} ml\n{body}"
