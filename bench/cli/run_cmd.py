"""`bench run`: train a method on every fold, infer its validation cases, score and summarise.

Heavy imports (torch, nnU-Net, MONAI) happen inside `run`, after the cheap checks: an unknown
method or profile, a malformed --folds, a dataset that fails validation or a work directory
of another dataset is one line and exit code 2 before anything is trained.

The work is a list of units (method, fold). `--executor inline` runs them here, one after the
other; `local` and `slurm` run each in its own process or job (`bench.executors`), and this
process scores once they all finished. `--dry-run` prints the plan from the dataset, the split
and the work directory alone, without importing torch.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from bench.cli.publishing import add_publish_arguments, publish

if TYPE_CHECKING:
    from bench.splits import Split


def _folds(text: str) -> list[int]:
    try:
        folds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--folds must look like 0,1,2, not {text!r}") from None
    if not folds:
        raise argparse.ArgumentTypeError("--folds names no fold")
    return sorted(set(folds))


def _whole(option: str, minimum: int):
    """An argparse type: a whole number >= `minimum`, else one line naming `option`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"{option} must be a whole number >= {minimum}, not {text!r}"
            )
        return value

    return parse


def _profile(args: argparse.Namespace):
    """The chosen profile, with --threads and --seed (when given) in place of its own."""
    from bench.profiles import get_profile

    changes = {"threads": args.threads, "seed": args.seed}
    return get_profile(args.profile).with_overrides(
        **{k: v for k, v in changes.items() if v is not None}
    )


def _methods(text: str) -> list[str]:
    names = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not names:
        raise argparse.ArgumentTypeError("--method names no method")
    return names


def register(subparsers: argparse._SubParsersAction) -> None:
    from bench.profiles import DEFAULT_PROFILE, PROFILES

    parser = subparsers.add_parser(
        "run",
        help="train, infer, score and summarise one method",
        description="For each fold of the split: fit the method (skipped when finished), "
        "predict the fold's validation cases through the common runner (finished cases "
        "skipped), then score every prediction against every rater.",
    )
    parser.add_argument(
        "--method",
        required=True,
        type=_methods,
        help="a name from `bench list`, or several separated by commas",
    )
    parser.add_argument(
        "--dataset", type=Path, default=None, help="dataset folder (default: the built-in phantom)"
    )
    parser.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        choices=sorted(PROFILES),
        help=f"run profile (default {DEFAULT_PROFILE}): "
        + "; ".join(f"{p.name}: {p.description}" for p in PROFILES.values()),
    )
    parser.add_argument("--folds", type=_folds, default=None, help="e.g. 0,1 (default: all)")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="work directory (default: runs/<dataset name>)"
    )
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument(
        "--threads",
        type=_whole("--threads", 1),
        default=None,
        help="torch CPU threads for training and inference (default: the profile's; results "
        "differ between counts, so the count is recorded in the results file)",
    )
    parser.add_argument(
        "--seed",
        type=_whole("--seed", 0),
        default=None,
        help="training seed (default: the profile's, 0); recorded in the results file. A "
        "trained fold remembers its seed: another seed needs another --workdir",
    )
    parser.add_argument(
        "--no-score", action="store_true", help="stop after the predictions (no evaluator)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_publish_arguments(parser)
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print each (method, fold) unit's state and what the run would do, then stop",
    )
    _add_executor_arguments(parser)
    parser.set_defaults(func=run)


def _add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    from bench.executors import EXECUTORS, LOCAL_PARALLEL, ExecutorSettings

    default = ExecutorSettings()
    group = parser.add_argument_group(
        "executor",
        "where the (method, fold) units run; inline ignores the options below, local ignores "
        "the Slurm ones",
    )
    group.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="inline",
        help="inline: here, one unit after the other (default); local: one process per unit "
        "(submitit); slurm: one Slurm job per unit (submitit)",
    )
    group.add_argument("--partition", default=None, help="Slurm partition (default: the cluster's)")
    group.add_argument(
        "--gpus-per-unit",
        type=int,
        default=default.gpus_per_unit,
        help=f"Slurm GPUs per unit (default {default.gpus_per_unit}); local units see the GPUs "
        "this process sees",
    )
    group.add_argument(
        "--cpus-per-unit",
        type=int,
        default=default.cpus_per_unit,
        help=f"Slurm CPUs per unit (default {default.cpus_per_unit})",
    )
    group.add_argument(
        "--mem-gb",
        type=int,
        default=default.mem_gb,
        help=f"Slurm memory per unit in GB (default {default.mem_gb})",
    )
    group.add_argument(
        "--time-min",
        type=int,
        default=default.time_min,
        help=f"time limit per unit in minutes, local and Slurm (default {default.time_min})",
    )
    group.add_argument(
        "--max-parallel",
        type=int,
        default=None,
        help=f"units running at once (default: all on Slurm, {LOCAL_PARALLEL} locally)",
    )
    group.add_argument(
        "--retries",
        type=int,
        default=default.retries,
        help=f"resubmissions of a failed unit (default {default.retries})",
    )


def run(args: argparse.Namespace) -> int:
    from bench.data.dataset import load_dataset
    from bench.registry import methods
    from bench.splits import load_split

    for name in args.method:
        methods().entry(name)  # an unknown name fails here, with suggestions
    from bench.data.phantom import dataset_or_default

    root = dataset_or_default(args.dataset)
    settings = _executor_settings(args)  # a bad option fails before anything reads images
    dataset = load_dataset(root)
    if args.dry_run:
        split = load_split(dataset)
        _print_plan(args, dataset, split, args.workdir or Path("runs") / dataset.name)
        return 0
    from bench.data.validate import validate_dataset
    from bench.errors import ValidationError

    problems = validate_dataset(dataset, progress=not args.quiet)
    if problems:
        raise ValidationError(problems)
    split = load_split(dataset)
    workdir = args.workdir or Path("runs") / dataset.name

    from bench.pipeline import score_run

    with _sigterm_interrupts():
        if settings is None:
            results, failed = _run_inline(args, dataset, split, workdir)
        else:
            results, failed = _run_units(args, settings, dataset, split, workdir)
    for result in results:
        if len(args.method) > 1:
            print(f"\n{result.method}")
        _print_run(result)
        if args.no_score:
            continue
        report = score_run(result, dataset, split)
        print(report.text)
        if args.publish:
            publish(report.results_path, args.leaderboard)
    if failed:
        from bench.errors import BenchError

        raise BenchError("\n".join(failed))
    return 0


def _run_inline(
    args: argparse.Namespace, dataset, split: Split, workdir: Path
) -> tuple[list, list[str]]:
    """Each method in turn, in this process; one whose own code raises is reported as one line
    and the next method still runs (`--debug` raises it with its traceback instead)."""
    from bench.errors import MethodFailed
    from bench.pipeline import run_method

    results, failed = [], []
    for name in args.method:
        try:
            results.append(
                run_method(
                    name,
                    dataset,
                    _profile(args),
                    workdir,
                    folds=args.folds,
                    split=split,
                    progress=not args.quiet,
                    device=args.device,
                )
            )
        except MethodFailed as error:
            if args.debug:
                raise
            failed.append(f"{error} (`bench --debug run ...` shows the traceback)")
    return results, failed


def _executor_settings(args: argparse.Namespace):
    """None for the inline executor; otherwise the checked settings (a bad one: BenchError)."""
    if args.executor == "inline":
        return None
    given = [name for name in ("threads", "seed") if getattr(args, name) is not None]
    if given:
        from bench.errors import BenchError

        raise BenchError(
            f"--{given[0]} works with --executor inline; with {args.executor} units train with "
            f"the profile's {given[0]}"
        )
    from bench.executors import ExecutorSettings

    return ExecutorSettings(
        kind=args.executor,
        partition=args.partition,
        gpus_per_unit=args.gpus_per_unit,
        cpus_per_unit=args.cpus_per_unit,
        time_min=args.time_min,
        mem_gb=args.mem_gb,
        max_parallel=args.max_parallel,
        retries=args.retries,
    )


def _run_units(args, settings, dataset, split: Split, workdir):
    """Every unit through submitit; (a RunResult per method whose units all finished, and one
    line per failed unit)."""
    import time

    from bench.executors import method_entry, run_units
    from bench.pipeline import RunLayout, RunResult, claim_workdir, plan_units
    from bench.profiles import get_profile

    units = plan_units(args.method, split, args.folds)
    claim_workdir(workdir, dataset)  # before any unit, so that units never race to claim it
    started = time.perf_counter()
    outcomes = run_units(
        units,
        settings,
        dataset.root,
        args.profile,
        workdir.resolve(),  # a unit may start in another directory (a Slurm node)
        split,
        device=args.device,
        entries={name: method_entry(name) for name in args.method},
    )
    wall = time.perf_counter() - started
    failed = [
        f"unit {o.unit} failed after {o.attempts} attempt(s): {o.error} (log: {o.log_path})"
        for o in outcomes
        if o.failed
    ]
    if failed:
        failed.append(
            f"{len(failed)} of {len(units)} unit(s) failed; finished work is kept: rerun to resume"
        )
    profile = get_profile(args.profile)
    results = []
    for name in args.method:
        mine = [o for o in outcomes if o.unit.method == name]
        if any(o.failed for o in mine):
            continue
        layout = RunLayout(workdir, name, profile.name)
        results.append(RunResult(name, profile, layout, [o.result for o in mine], wall))
    return results, failed


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a scheduler's or `kill`'s stop) acts as Ctrl-C does: the executor cancels
    its jobs and says so, finished outputs stay, and `bench` says how to resume."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals to it
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _print_run(result) -> None:
    from tabulate import tabulate

    rows = [
        (
            f.fold,
            "yes" if f.trained_now else "earlier",
            f"{f.train_s:.1f}" if f.train_s is not None else "-",
            len(f.predicted),
            len(f.skipped),
            f"{_mean([r['latency_s'] for r in f.records]):.2f}" if f.records else "-",
        )
        for f in result.folds
    ]
    headers = ("fold", "trained", "train s", "predicted", "already done", "s/case")
    print(tabulate(rows, headers=headers))
    predicted = sum(len(f.predicted) for f in result.folds)
    wall = sum(f.inference_wall_s for f in result.folds)
    if predicted and wall:
        peak = max(r["peak_device_mb"] or r["peak_rss_mb"] for f in result.folds for r in f.records)
        print(
            f"inference: {predicted} case(s) in {wall:.1f} s ({60 * predicted / wall:.1f} "
            f"cases/min), peak memory {peak:.0f} MB"
        )
    print(f"predictions: {result.layout.predictions_dir}")


def _print_plan(args: argparse.Namespace, dataset, split: Split, workdir: Path) -> None:
    """What `bench run` would do; reads the work directory only (no torch, nothing written)."""
    from tabulate import tabulate

    from bench.pipeline import check_workdir, plan_units, unit_status

    check_workdir(workdir, dataset)
    units = plan_units(args.method, split, args.folds)
    print(
        f"plan: {len(units)} unit(s) (method, fold), profile {args.profile}, dataset "
        f"{dataset.name}, executor {args.executor}, work directory {workdir}"
    )
    rows = []
    for unit in units:
        status = unit_status(unit, split, workdir, args.profile)
        work = [] if status.trained else ["train"]
        work += ["predict"] if status.to_predict else []
        trained = "yes" if status.trained else "no"
        rows.append(
            (
                unit.method,
                unit.fold,
                trained,
                len(status.predicted),
                len(status.to_predict),
                " + ".join(work) or "nothing",
            )
        )
    headers = ("method", "fold", "trained", "predicted", "to predict", "would run")
    print(tabulate(rows, headers=headers))
    validated = set(split.validated_cases())
    planned = {unit.fold for unit in units}
    for name in args.method:
        if args.no_score:
            print(f"{name}: no scoring (--no-score)")
            continue
        after: set[str] = set()
        for unit in plan_units([name], split):
            status = unit_status(unit, split, workdir, args.profile)
            after |= set(status.predicted) | (
                set(status.to_predict) if unit.fold in planned else set()
            )
        missing = len(validated - after)
        results = "and write the results file"
        if missing:
            results = f"but no results file ({missing} validation case(s) of other folds missing)"
        print(f"{name}: scoring would run on {len(after)} case(s) {results}")


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")
