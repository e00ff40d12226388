"""`bench list`: every registered method and predictions submission, one line each (imports
no deep-learning library)."""

from __future__ import annotations

import argparse

from tabulate import tabulate


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("list", help="list every registered method")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench.registry import methods, prediction_submissions

    registry = methods()
    rows = [
        (name, registry.entry(name).origin, "bench run", registry.describe(name))
        for name in registry
    ]
    rows += [
        (m.name, f"submissions/{m.folder.name}", "bench score", m.description)
        for m in prediction_submissions()
    ]
    if not rows:
        print("no methods are registered yet")
        return 0
    rows.sort()
    headers = ("method", "from", "results by", "description")
    print(tabulate(rows, headers=headers, tablefmt="simple"))
    return 0
