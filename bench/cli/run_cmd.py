"""`bench run`: train a method on every fold, infer its validation cases, score and summarise.

Heavy imports (torch, nnU-Net, MONAI) happen inside `run`, after the cheap checks: an unknown
method or profile, a malformed --folds, a dataset that fails validation or a work directory
of another dataset is one line and exit code 2 before anything is trained.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _folds(text: str) -> list[int]:
    try:
        folds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--folds must look like 0,1,2, not {text!r}") from None
    if not folds:
        raise argparse.ArgumentTypeError("--folds names no fold")
    return sorted(set(folds))


def register(subparsers: argparse._SubParsersAction) -> None:
    from bench.profiles import DEFAULT_PROFILE, PROFILES

    parser = subparsers.add_parser(
        "run",
        help="train, infer, score and summarise one method",
        description="For each fold of the split: fit the method (skipped when finished), "
        "predict the fold's validation cases through the common runner (finished cases "
        "skipped), then score every prediction against every rater.",
    )
    parser.add_argument("--method", required=True, help="a name from `bench list`")
    parser.add_argument(
        "--dataset", type=Path, default=None, help="dataset folder (default: the built-in phantom)"
    )
    parser.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        choices=sorted(PROFILES),
        help=f"run profile (default {DEFAULT_PROFILE}): "
        + "; ".join(f"{p.name}: {p.description}" for p in PROFILES.values()),
    )
    parser.add_argument("--folds", type=_folds, default=None, help="e.g. 0,1 (default: all)")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="work directory (default: runs/<dataset name>)"
    )
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument(
        "--no-score", action="store_true", help="stop after the predictions (no evaluator)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--publish",
        action="store_true",
        help="copy the results file into the leaderboard and regenerate its markdown",
    )
    parser.add_argument(
        "--leaderboard",
        type=Path,
        default=Path("leaderboard"),
        help="leaderboard folder for --publish (default: leaderboard)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from bench.data.dataset import load_dataset
    from bench.data.validate import validate_dataset
    from bench.errors import ValidationError
    from bench.registry import methods
    from bench.splits import load_split

    methods().entry(args.method)  # an unknown name fails here, with suggestions
    root = args.dataset
    if root is None:
        from bench.data.phantom import ensure_default_phantom

        root = ensure_default_phantom()
    dataset = load_dataset(root)
    problems = validate_dataset(dataset, progress=not args.quiet)
    if problems:
        raise ValidationError(problems)
    split = load_split(dataset)
    workdir = args.workdir or Path("runs") / dataset.name

    from bench.pipeline import run_method, score_run

    result = run_method(
        args.method,
        dataset,
        args.profile,
        workdir,
        folds=args.folds,
        split=split,
        progress=not args.quiet,
        device=args.device,
    )
    rows = [
        (
            f.fold,
            "yes" if f.trained_now else "earlier",
            f"{f.train_s:.1f}" if f.train_s is not None else "-",
            len(f.predicted),
            len(f.skipped),
            f"{_mean([r['latency_s'] for r in f.records]):.2f}" if f.records else "-",
        )
        for f in result.folds
    ]
    headers = ("fold", "trained", "train s", "predicted", "already done", "s/case")
    print(tabulate(rows, headers=headers))
    predicted = sum(len(f.predicted) for f in result.folds)
    wall = sum(f.inference_wall_s for f in result.folds)
    if predicted and wall:
        peak = max(r["peak_device_mb"] or r["peak_rss_mb"] for f in result.folds for r in f.records)
        print(
            f"inference: {predicted} case(s) in {wall:.1f} s ({60 * predicted / wall:.1f} "
            f"cases/min), peak memory {peak:.0f} MB"
        )
    print(f"predictions: {result.layout.predictions_dir}")
    if args.no_score:
        return 0
    report = score_run(result, dataset, split)
    print(report.text)
    if args.publish:
        _publish(report.results_path, args.leaderboard)
    return 0


def _publish(results_path: Path | None, leaderboard: Path) -> None:
    """Copy the results file into the leaderboard's results and regenerate the leaderboard."""
    import shutil

    from bench.errors import BenchError
    from bench.io import atomic_path
    from bench.leaderboard import write_leaderboard

    if results_path is None:
        raise BenchError("--publish needs every fold predicted and scored; rerun without --folds")
    target = leaderboard / "results" / results_path.name
    with atomic_path(target) as tmp:
        shutil.copyfile(results_path, tmp)
    write_leaderboard(leaderboard / "results", leaderboard / "README.md")
    print(f"published {target} and regenerated {leaderboard / 'README.md'}")


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")
