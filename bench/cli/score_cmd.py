"""`bench score --submission PATH`: score a predictions-only submission like `bench run` does."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli.publishing import add_publish_arguments, publish


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score a predictions-only submission",
        description="Check that the submission's masks cover exactly the validation cases of "
        "the split and lie on the images' grids, score them against every rater and write a "
        "results file.",
    )
    parser.add_argument("--submission", type=Path, required=True, help="the submission folder")
    parser.add_argument(
        "--dataset", type=Path, default=None, help="dataset folder (default: the built-in phantom)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: runs/<dataset name>)"
    )
    add_publish_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench.data.dataset import load_dataset
    from bench.data.phantom import dataset_or_default
    from bench.submission_score import score_predictions

    root = dataset_or_default(args.dataset)
    dataset = load_dataset(root)
    outcome = score_predictions(args.submission, dataset, args.out or Path("runs") / dataset.name)
    print(outcome.text)
    if args.publish:
        publish(outcome.results_path, args.leaderboard)
    return 0
