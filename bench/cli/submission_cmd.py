"""`bench submission new NAME` and `bench submission check PATH...`.

`check` reports one line per submission; a failing one does not stop the others, and any
failure makes the exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "submission", help="start or check a contributed method", description=__doc__
    )
    actions = parser.add_subparsers(dest="submission_command", metavar="ACTION", required=True)
    new = actions.add_parser("new", help="copy the template to DIR/NAME")
    new.add_argument("name", help="a Python identifier, e.g. my_method")
    new.add_argument("--dir", type=Path, default=Path("submissions"), help="default: submissions")
    new.set_defaults(func=new_cmd)
    check = actions.add_parser(
        "check",
        help="validate the manifest and run the adapter on the smoke profile",
        description="Validate submission.toml, import the adapter in a fresh process, and "
        "train, predict and score it on a tiny synthetic dataset (smoke profile, fold 0).",
    )
    check.add_argument("paths", type=Path, nargs="+", metavar="PATH")
    check.set_defaults(func=check_cmd)


def new_cmd(args: argparse.Namespace) -> int:
    from bench.submissions import new_submission

    target = new_submission(args.name, args.dir)
    print(f"created {target}: fill in submission.toml and adapter.py (see its README.md)")
    return 0


def check_cmd(args: argparse.Namespace) -> int:
    from bench.errors import BenchError
    from bench.submissions import check_submission

    failed = 0
    for path in args.paths:
        try:
            print(check_submission(path).summary())
        except BenchError as error:
            failed += 1
            print(f"error: {error}", file=sys.stderr)
    return 2 if failed else 0
