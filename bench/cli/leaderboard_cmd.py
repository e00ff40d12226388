"""`bench leaderboard`: render leaderboard/README.md from leaderboard/results/*.json, or
check (`--check`, run by `make test`) that the committed files are what the results give."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "leaderboard",
        help="render the leaderboard markdown from results files (or --check it)",
        description="Rank methods per dataset and profile by SDT5 against the reference "
        "rater, with non-inferiority verdicts, rank stability and runtimes; write one "
        "details page and two figures per results file next to the README.",
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=Path("leaderboard/results"),
        help="folder of results *.json (default: leaderboard/results)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("leaderboard/README.md"),
        help="the markdown to write (default: leaderboard/README.md)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 2 if the files differ from what the "
        "results give or a results file fails validation",
    )
    parser.add_argument(
        "--predictions-root",
        type=Path,
        default=None,
        help="a run's predictions folder (<workdir>/predictions): each method page then shows "
        "Figure 4 panels drawn from <root>/<method>/<profile>/ where its masks are the ones "
        "the results file hashes",
    )
    parser.add_argument(
        "--dataset",
        type=Path,
        default=None,
        help="the dataset of --predictions-root (default: the built-in phantom)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench.errors import BenchError
    from bench.leaderboard import check_leaderboard, write_leaderboard

    if args.check:
        problems = check_leaderboard(args.results_dir, args.out)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise BenchError(
                f"leaderboard is stale: {problems[0]}{more}; run `bench "
                "leaderboard` and commit the result"
            )
        print(f"{args.out} is up to date with {args.results_dir}")
        return 0
    dataset = None
    if args.predictions_root is not None:
        from bench.data.dataset import load_dataset
        from bench.data.phantom import dataset_or_default

        dataset = load_dataset(dataset_or_default(args.dataset))
    changed = write_leaderboard(args.results_dir, args.out, args.predictions_root, dataset)
    print(
        f"{args.out}: {len(changed)} file(s) written or removed"
        if changed
        else f"{args.out} was already up to date"
    )
    return 0
