"""Writing a results file: the one path of `bench run`, `bench score` and `bench challenge score`.

Each command scores its own way and knows its own timing; the provenance every results file
carries (dataset, commit, machine), the study computed from the per-case table and the
atomic write are the same for all three, so they live here once.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from bench.data.dataset import Dataset
from bench.errors import InputError
from bench.results import Results


def record_results(
    per_case: pd.DataFrame,
    method: str,
    dataset: Dataset,
    run: Mapping[str, Any],
    folder: Path,
    file: Path | None = None,
    blame: Path | None = None,
) -> tuple[Results, Path]:
    """Build the results of `method` from `per_case`; write them to `file`, or by default to
    `folder/<method>__<dataset>__<profile>.json` (`Results.stem`).

    `run` holds what only the command knows (`split_sha256`, `profile`, timing, hashes, and
    `hardware` when the machine that scored is not the one that predicted). A name or value
    the schema refuses is an InputError naming `blame` (the file it came from) when given.
    """
    from bench import provenance
    from bench.io import remove_stale_temporaries
    from bench.results import build_results, save_results
    from bench.stats import RaterRoles

    metadata = {
        "dataset_name": dataset.name,
        "dataset_sha256": dataset.content_sha256,
        "git_commit": provenance.git_commit(),
        "hardware": provenance.hardware(),
        **run,
    }
    try:
        results = build_results(per_case, method, RaterRoles.from_dataset(dataset), metadata)
    except ValueError as error:
        if blame is None:
            raise
        raise InputError(str(error), file=blame) from error
    path = Path(file) if file else Path(folder) / f"{results.stem}.json"
    remove_stale_temporaries(path.parent, path.name)  # a killed writer's; this one replaces it
    return results, save_results(results, path)
