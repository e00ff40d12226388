"""`bench challenge predict` and `bench challenge score`: blind inference, then scoring.

`predict` runs an adapter submission's trained model over a folder of images in a sandboxed
child process (no labels, no manifest, no network, time and memory limits) and writes the
masks and `challenge_record.json`; any failed case makes the exit code 2, with one line.
`score` scores that folder against the dataset's labels and writes a results file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.errors import BenchError


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    from bench.challenge.supervise import (
        DEFAULT_MEMORY_GB,
        DEFAULT_STARTUP_S,
        DEFAULT_TIME_LIMIT_S_PER_CASE,
    )

    parser = subparsers.add_parser(
        "challenge", help="run a submission blind on images, then score it", description=__doc__
    )
    actions = parser.add_subparsers(dest="challenge_command", metavar="ACTION", required=True)
    predict = actions.add_parser(
        "predict",
        help="run an adapter submission's trained model blind over a folder of images",
        description="Copy only the images into a sandbox, run the submission's predictor "
        "there (own user, mount, PID and network namespaces; the dataset folder covered; a "
        "scrubbed environment; per-case time and memory limits, timed by the harness) and keep "
        "only well-formed <case>.nii.gz masks. Writes OUT/challenge_record.json. Refuses to "
        "run where the full sandbox is unavailable unless --allow-weaker-isolation is given.",
    )
    predict.add_argument("--submission", type=Path, required=True, help="the submission folder")
    predict.add_argument(
        "--images", type=Path, required=True, help="folder of <case>.nii.gz images"
    )
    predict.add_argument("--out", type=Path, required=True, help="output folder for the masks")
    predict.add_argument(
        "--model",
        type=Path,
        default=None,
        help="the trained model folder (`bench run`'s models/<method>/<profile>; "
        "default: SUBMISSION/model)",
    )
    predict.add_argument("--fold", type=int, default=0, help="the trained fold to load (0)")
    predict.add_argument("--profile", default="demo", help="the profile it was trained with")
    predict.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    predict.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: the profile's)"
    )
    predict.add_argument(
        "--time-limit-s-per-case",
        type=_positive,
        default=DEFAULT_TIME_LIMIT_S_PER_CASE,
        help=f"seconds per case (default {DEFAULT_TIME_LIMIT_S_PER_CASE:g})",
    )
    predict.add_argument(
        "--startup-s",
        type=_positive,
        default=DEFAULT_STARTUP_S,
        help=f"seconds to import the submission and load the model ({DEFAULT_STARTUP_S:g})",
    )
    predict.add_argument(
        "--memory-gb",
        type=_non_negative,
        default=DEFAULT_MEMORY_GB,
        help=f"address-space limit of the child (default {DEFAULT_MEMORY_GB:g}; 0: none)",
    )
    predict.add_argument(
        "--hide",
        type=Path,
        action="append",
        default=[],
        help="another folder the submission must not see (repeatable; a folder, not a file; "
        "one that cannot be hidden is an error)",
    )
    predict.add_argument(
        "--allow-weaker-isolation",
        dest="require_isolation",
        action="store_false",
        help="run even where the full sandbox is unavailable (by default that is refused); "
        "then the submission can read what the organiser's user can read, and at level "
        "'none' a process it detaches (its own session) outlives the run",
    )
    predict.set_defaults(func=predict_cmd)
    score = actions.add_parser(
        "score",
        help="score a challenge output folder against the hidden labels",
        description="Score the masks of `bench challenge predict` against every rater of "
        "the dataset and write a results file.",
    )
    score.add_argument("--dataset", type=Path, required=True, help="the dataset folder")
    score.add_argument(
        "--predictions", type=Path, required=True, help="the output folder of `predict`"
    )
    score.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results file (default: runs/<dataset>/challenge/<stem>.json)",
    )
    score.add_argument(
        "--missing-as-empty",
        action="store_true",
        help="score failed cases as empty masks instead of refusing",
    )
    score.add_argument(
        "--allow-weaker-isolation",
        action="store_true",
        help="score predictions made below isolation level 'full' (refused by default: the "
        "submission could read the labels there)",
    )
    score.set_defaults(func=score_cmd)


def predict_cmd(args: argparse.Namespace) -> int:
    from bench.challenge.predict import ChallengeRun, predict
    from bench.challenge.record import RECORD_NAME
    from bench.challenge.supervise import Limits

    run = ChallengeRun(
        submission=args.submission,
        images=args.images,
        out=args.out,
        model=args.model,
        fold=args.fold,
        profile=args.profile,
        device=args.device,
        threads=args.threads,
        limits=Limits(args.time_limit_s_per_case, args.startup_s, args.memory_gb or None),
        hide=tuple(args.hide),
        require_isolation=args.require_isolation,
    )
    record = predict(run)
    for note in record.notes:
        print(f"note: {note}")
    if record.failed:
        raise BenchError(f"{record.summary()}; see {args.out / RECORD_NAME}")
    print(f"{record.summary()} into {args.out}")
    return 0


def score_cmd(args: argparse.Namespace) -> int:
    from bench.challenge.score import score_challenge
    from bench.data.dataset import load_dataset

    outcome = score_challenge(
        load_dataset(args.dataset),
        args.predictions,
        args.out,
        args.missing_as_empty,
        args.allow_weaker_isolation,
    )
    print(outcome.text)
    return 0
