"""The `bench` command line: one small module per subcommand.

Each subcommand module exposes `register(subparsers)`, which adds its parser and sets
`func` to the function that runs it. Imports of heavy libraries (torch, nnU-Net, SMP)
happen inside those functions so that `bench --help` and `bench list` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from bench import __version__
from bench.errors import BenchError

# Subcommand modules, in the order `bench --help` lists them.
SUBCOMMANDS: tuple[str, ...] = (
    "bench.cli.list_cmd",
    "bench.cli.data_cmd",
    "bench.cli.run_cmd",
    "bench.cli.evaluate_cmd",
    "bench.cli.stats_cmd",
    "bench.cli.compare_cmd",
    "bench.cli.leaderboard_cmd",
    "bench.cli.submission_cmd",
    "bench.cli.score_cmd",
    "bench.cli.challenge_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench",
        description="NCCT Stroke Bench: train, infer, score and compare stroke segmentation "
        "methods on non-contrast CT.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in SUBCOMMANDS:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # numexpr (imported by pandas) announces its thread count at INFO on every run.
    logging.getLogger("numexpr").setLevel(logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except BenchError as error:
        if args.debug:
            raise
        for line in str(error).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished outputs are kept; rerun to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
