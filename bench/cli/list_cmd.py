"""`bench list`: every registered method, one line each (imports no deep-learning library)."""

from __future__ import annotations

import argparse

from tabulate import tabulate


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("list", help="list every registered method")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench.registry import methods

    registry = methods()
    if not len(registry):
        print("no methods are registered yet")
        return 0
    rows = [(name, registry.entry(name).origin, registry.describe(name)) for name in registry]
    print(tabulate(rows, headers=("method", "from", "description"), tablefmt="simple"))
    return 0
