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
    "bench.cli.show_cmd",
    "bench.cli.stats_cmd",
    "bench.cli.compare_cmd",
    "bench.cli.leaderboard_cmd",
    "bench.cli.submission_cmd",
    "bench.cli.score_cmd",
    "bench.cli.challenge_cmd",
)
# What `pip install 'ncct-stroke-bench[methods]'` adds to the core (import names): training and
# inference. Scoring, statistics and the leaderboard run without them.
METHODS_EXTRA = frozenset(
    {"torch", "torchvision", "nnunetv2", "monai", "segmentation_models_pytorch", "submitit"}
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
    except (BenchError, ModuleNotFoundError) as error:
        package = missing_extra(error)
        if args.debug or not (package or isinstance(error, BenchError)):
            raise
        lines = [needs_extra_line(args, package)] if package else str(error).splitlines()
        for line in lines:
            print(f"error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished outputs are kept; rerun to resume", file=sys.stderr)
        return 130


def missing_extra(error: BaseException) -> str | None:
    """The `methods` extra's package whose absence raised `error` (or the error it wraps)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ModuleNotFoundError):
            package = (current.name or "").partition(".")[0]
            if package in METHODS_EXTRA:
                return package
        current = current.__cause__ or current.__context__
    return None


def needs_extra_line(args: argparse.Namespace, package: str) -> str:
    command = " ".join(
        filter(None, ["bench", args.command, getattr(args, f"{args.command}_command", None)])
    )
    return (
        f"{command} needs the methods extra ({package} is not installed): "
        "pip install 'ncct-stroke-bench[methods]'"
    )


if __name__ == "__main__":
    sys.exit(main())
