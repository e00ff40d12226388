"""`bench stats`: Table 2 and Table 3 of one method from a per-case metrics CSV."""

from __future__ import annotations

import argparse

from bench.stats.config import MARGIN_PRESETS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="print Table 2 and Table 3 (non-inferiority) of a method from per-case metrics",
        description="Median ± 90%% bootstrap CI of every metric against the reference rater "
        "(Table 2), and against each independent rater next to the reference rater, with "
        "bias and precision non-inferiority tests (Table 3). Rater roles come from --dataset, "
        "else from the options, else from the table (reference A if present).",
    )
    parser.add_argument(
        "--metrics",
        required=True,
        metavar="TABLE.csv",
        help="the evaluator's per-case metrics table",
    )
    parser.add_argument("--method", required=True, help="the test name of the method")
    parser.add_argument("--dataset", metavar="DIR", help="dataset whose manifest names the raters")
    parser.add_argument("--reference", help="reference (training) rater, e.g. A")
    parser.add_argument("--raters", help="independent raters, comma-separated, e.g. B,C")
    parser.add_argument(
        "--margins",
        choices=sorted(MARGIN_PRESETS),
        default="paper",
        help="paper: 0.05 / 2 ml / 2 mm; revised: 20%% / 3 ml / 3 mm",
    )
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples R")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench.errors import InputError
    from bench.stats import RaterRoles, compute_study, tables
    from bench.stats.per_case import read_per_case_csv

    table = read_per_case_csv(args.metrics)
    independent = [r for r in args.raters.split(",") if r] if args.raters else None
    if args.dataset:
        from bench.data.dataset import load_dataset

        roles = RaterRoles.from_dataset(load_dataset(args.dataset))
        if args.reference or independent:
            roles = RaterRoles(
                args.reference or roles.reference,
                tuple(independent or roles.independent),
                roles.truth,
            )
    else:
        roles = RaterRoles.from_table(table, args.method, args.reference, independent)
    try:
        config = MARGIN_PRESETS[args.margins](
            alpha=args.alpha, resamples=args.resamples, seed=args.seed
        )
    except ValueError as error:
        raise InputError(str(error)) from error
    study = compute_study(table, args.method, roles, config)

    margins = ", ".join(f"{k} {v}" for k, v in config.margins.items())
    print(
        f"{args.method}: {study.n_cases} cases, reference {roles.reference}, independent "
        f"{', '.join(roles.independent) or 'none'}; R = {config.resamples}, seed "
        f"{config.seed}, alpha {config.alpha}, margins {margins}, Holm over "
        f"{config.holm_family.value}"
    )
    print(tables.study_report(study, args.method, roles.reference))
    return 0
