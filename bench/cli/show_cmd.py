"""`bench show`: Figure 4 of the paper for one case of a predictions folder."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "show",
        help="draw one case: NCCT, the raters' contours and the method's probability map",
        description="Draw the NCCT slice through the lesion (0-80 HU) with every rater's contour, "
        "beside the method's probability map (PREDICTIONS/probabilities/CASE.nii.gz, else the "
        "mask PREDICTIONS/CASE.nii.gz), as one PNG.",
    )
    parser.add_argument(
        "--dataset", type=Path, default=None, help="dataset folder (default: the built-in phantom)"
    )
    parser.add_argument(
        "--predictions", type=Path, required=True, help="a predictions folder (as bench run's)"
    )
    parser.add_argument("--case", required=True, help="case id")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--title", default=None, help="figure title (default: folder and case)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench.data.dataset import load_dataset
    from bench.data.phantom import dataset_or_default
    from bench.io import write_bytes
    from bench.leaderboard.case_figure import case_figure

    root = dataset_or_default(args.dataset)
    dataset = load_dataset(root)
    folder = args.predictions.resolve()
    title = args.title or f"{folder.parent.name}/{folder.name}, case {args.case}"
    write_bytes(case_figure(dataset, args.predictions, args.case, title), args.out)
    print(f"wrote {args.out}")
    return 0
