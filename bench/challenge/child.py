"""The submission's side of the challenge: `python -m bench.challenge.child` in the sandbox.

It reads its spec (the submission folder, the model folder, the profile) as the first line of
its stdin, then one case id per line, each handed over by the parent once that case's image
is in `input/`; it answers each with `case_done` or `case_error` on the pipe it finds as
stdout, and ends when stdin closes. Its own stdout is then pointed at stderr, so nothing the
submission prints can pass for an event, and fd 0 at /dev/null. No path the child could
change is ever read or written by the parent: the spec travels on the pipe, not in a file.
Cases run through the common runner (`bench.runner.predict_cases`), so a case's outputs are
those `bench run` would write. An exception in one case is reported and the next case runs.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

INPUT_DIR = "input"
OUTPUT_DIR = "output"


def spec(
    *,
    submission: Path,
    entry: str,
    model: Path,
    fold: int,
    profile: str,
    device: str,
    threads: int | None,
) -> dict[str, Any]:
    """What the child needs to start, sent as the first line of its stdin."""
    return {
        "submission": str(submission),
        "entry": entry,
        "model": str(model),
        "fold": fold,
        "profile": profile,
        "device": device,
        "threads": threads,
    }


class Events:
    """JSON lines to the parent, flushed one by one."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def emit(self, event: str, **fields: Any) -> None:
        self.stream.write(json.dumps({"event": event, **fields}, default=str) + "\n")
        self.stream.flush()


def _error_fields(error: BaseException) -> dict[str, str]:
    text = str(error).strip()
    return {"error_type": type(error).__name__, "error": text.splitlines()[0][:500] if text else ""}


def _load(spec: dict[str, Any]):
    """Import the adapter and restore the trained fold (the submission's start-up)."""
    from bench.adapter import MethodAdapter
    from bench.profiles import get_profile
    from bench.submissions import import_adapter

    cls = import_adapter(Path(spec["submission"]), spec["entry"])
    if not (isinstance(cls, type) and issubclass(cls, MethodAdapter)):
        raise TypeError(f"{spec['entry']} is not a subclass of bench.adapter.MethodAdapter")
    profile = get_profile(spec["profile"])
    predictor = cls().load(Path(spec["model"]), int(spec["fold"]), profile)
    return predictor, profile


def _with_postprocessing(settings, model: Path, fold: int):
    """The mask rule `bench run` chose for this fold, where it chose one."""
    from dataclasses import replace

    from bench.runner.postprocess import choice_file, load_choice

    path = choice_file(model, fold)
    if not path.is_file():
        return settings
    return replace(settings, postprocessing=load_choice(path).postprocessing)


def _warm_up() -> None:
    """What the runner imports lazily on its first case, imported now so that start-up pays
    for it and the first case is timed like the others."""
    import monai.inferers  # noqa: F401
    import scipy.ndimage  # noqa: F401


def run(spec: dict[str, Any], events: Events, cases: TextIO) -> int:
    started = time.perf_counter()
    try:
        predictor, profile = _load(spec)
        from bench.runner import CaseInput, InferenceSettings, predict_cases

        settings = InferenceSettings.from_profile(
            profile, device=spec["device"], threads=spec.get("threads")
        )
        settings = _with_postprocessing(settings, Path(spec["model"]), int(spec["fold"]))
        _warm_up()
    except BaseException as error:  # contributed code may raise anything, even SystemExit
        events.emit("startup_error", **_error_fields(error))
        return 1
    events.emit("ready", load_s=time.perf_counter() - started)
    output = Path(OUTPUT_DIR)
    for line in cases:
        message = json.loads(line)
        case, token = str(message["case"]), str(message["token"])
        events.emit("case_start", case=case, token=token)
        try:
            summary = predict_cases(
                predictor,
                [CaseInput(case, Path(INPUT_DIR) / f"{case}.nii.gz")],
                output,
                settings,
                cache_dir=Path("cache"),
            )
            record = summary.records[0].__dict__ if summary.records else {}
            events.emit("case_done", case=case, token=token, runner=record)
        except BaseException as error:
            events.emit("case_error", case=case, token=token, **_error_fields(error))
    events.emit("finished")
    return 0


def main() -> int:
    # The event pipe is the stdout we were given; from here on stdout is stderr. The case
    # pipe is the stdin we were given; from here on stdin is empty.
    events = Events(os.fdopen(os.dup(1), "w", encoding="utf-8"))
    cases = os.fdopen(os.dup(0), "r", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    spec = json.loads(cases.readline())
    return run(spec, events, cases)


if __name__ == "__main__":
    sys.exit(main())
