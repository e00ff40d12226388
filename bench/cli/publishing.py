"""`--publish` and `--leaderboard`, shared by `bench run` and `bench score`."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_publish_arguments(parser: argparse.ArgumentParser) -> None:
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


def publish(results_path: Path | None, leaderboard: Path) -> None:
    """Publish the results file and say where it went."""
    from bench.errors import BenchError
    from bench.leaderboard.publish import publish_results

    if results_path is None:
        raise BenchError("--publish needs every fold predicted and scored; rerun without --folds")
    target = publish_results(results_path, leaderboard)
    print(f"published {target} and regenerated {leaderboard / 'README.md'}")
