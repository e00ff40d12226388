"""`bench compare`: paired Wilcoxon tests between methods, from their results files."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.results import Results

DEFAULT_METRICS = "SDT5,Dice"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="test whether methods differ, case by case, against the reference rater",
        description="For every pair of the methods: the per-case difference of each metric "
        "against the reference rater over the cases both were scored on (a case where either "
        "is undefined is dropped), a two-sided Wilcoxon signed-rank test, Holm over all the "
        "tests, and the median difference with a case-bootstrap CI. Reads results files only.",
    )
    parser.add_argument(
        "--methods", nargs="+", required=True, metavar="METHOD", help="two or more methods"
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=Path("leaderboard/results"),
        help="folder of results *.json (default: leaderboard/results)",
    )
    parser.add_argument("--dataset", help="dataset name, when a method has results for several")
    parser.add_argument("--profile", help="profile, when a method has results for several")
    parser.add_argument(
        "--metrics",
        default=DEFAULT_METRICS,
        help=f"comma-separated metrics (default: {DEFAULT_METRICS})",
    )
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples R")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from bench.errors import InputError
    from bench.leaderboard.collect import load_all
    from bench.stats.paired import CompareConfig, all_pairs, compare_methods, reference_scores
    from bench.stats.paired_tables import comparison_table

    try:
        config = CompareConfig(
            metrics=tuple(m for m in args.metrics.split(",") if m),
            alpha=args.alpha,
            resamples=args.resamples,
            seed=args.seed,
        )
    except ValueError as error:
        raise InputError(str(error)) from error
    chosen = select_results(
        load_all(args.results_dir), args.methods, args.results_dir, args.dataset, args.profile
    )
    reference = chosen[0].stats.roles.reference
    scores = {
        r.method.name: reference_scores(
            r.per_case.to_frame(), reference, r.method.name, config.metrics
        )
        for r in chosen
    }
    pairs = all_pairs(args.methods)
    for first, second in pairs:
        if scores[first].index.intersection(scores[second].index).empty:
            raise InputError(
                f"{first} and {second} share no case: their results files score different cases",
                file=args.results_dir,
            )
    comparisons = compare_methods(scores, pairs, config)
    dataset = chosen[0].dataset
    print(
        f"{dataset.name} (sha256 {dataset.content_sha256[:12]}), profile {chosen[0].profile}, "
        f"reference {reference}: two-sided Wilcoxon signed-rank of the per-case differences, "
        f"Holm over {len(comparisons)} tests, R = {config.resamples}, seed {config.seed}"
    )
    headers, rows = comparison_table(comparisons, config)
    print(tabulate(rows, headers=headers, disable_numparse=True))
    print(
        "Cases used: of the cases both methods were scored on, those where the metric is "
        "defined for both (a case with an undefined metric for either is dropped)."
    )
    return 0


def select_results(
    all_results: Sequence[Results],
    methods: Sequence[str],
    results_dir: Path,
    dataset: str | None,
    profile: str | None,
) -> list[Results]:
    """One results file per method, all of one dataset (name and hash), profile and
    reference rater; InputError naming the method and the folder otherwise."""
    from bench.errors import InputError

    if len(methods) < 2:
        raise InputError("compare needs at least two methods", file=results_dir)
    repeated = sorted({m for m in methods if list(methods).count(m) > 1})
    if repeated:
        raise InputError(f"method {repeated[0]} is named twice", file=results_dir)
    candidates = [
        r
        for r in all_results
        if (dataset is None or r.dataset.name == dataset)
        and (profile is None or r.profile == profile)
    ]
    chosen = []
    for method in methods:
        found = [r for r in candidates if r.method.name == method]
        if not found:
            where = "".join(
                f" for {label} {value}"
                for label, value in (("dataset", dataset), ("profile", profile))
                if value
            )
            known = ", ".join(sorted({r.method.name for r in candidates})) or "none"
            raise InputError(
                f"unknown method {method}: no results file{where} (methods: {known})",
                file=results_dir,
            )
        if len(found) > 1:
            runs = ", ".join(f"{r.dataset.name}/{r.profile}" for r in found)
            raise InputError(
                f"method {method} has results for {runs}; choose with --dataset and --profile",
                file=results_dir,
            )
        chosen.append(found[0])
    groups = {r.group for r in chosen}
    if len(groups) > 1:
        runs = ", ".join(
            f"{r.method.name} on {r.dataset.name} (sha256 {r.dataset.content_sha256[:12]}) "
            f"profile {r.profile}"
            for r in chosen
        )
        raise InputError(
            f"methods were run on different datasets or profiles ({runs}): compare only "
            "results of one dataset and profile",
            file=results_dir,
        )
    references = sorted({r.stats.roles.reference for r in chosen})
    if len(references) > 1:
        raise InputError(
            f"the results disagree on the reference rater ({', '.join(references)})",
            file=results_dir,
        )
    return chosen
