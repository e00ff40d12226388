"""Where a run keeps one case's outputs, and whether they are complete.

Torch-free on purpose: `bench run --dry-run` and scoring ask these questions without loading
the runner (`bench.runner` imports torch). The record is written last, so a case is finished
only when its mask, probability and record all exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

PROBABILITY_DIR = "probabilities"
RECORD_DIR = "records"


class CaseOutputs(NamedTuple):
    """The files a prediction of one case consists of."""

    mask: Path
    probability: Path
    record: Path


def output_paths(out_dir: Path, case_id: str) -> CaseOutputs:
    return CaseOutputs(
        out_dir / f"{case_id}.nii.gz",
        out_dir / PROBABILITY_DIR / f"{case_id}.nii.gz",
        out_dir / RECORD_DIR / f"{case_id}.json",
    )


def is_finished(out_dir: Path, case_id: str) -> bool:
    mask, probability, record = output_paths(out_dir, case_id)
    return mask.is_file() and probability.is_file() and record.is_file()
