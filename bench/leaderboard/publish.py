"""Putting a results file on the leaderboard: copy it in, then regenerate every page."""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.io import atomic_path, remove_stale_temporaries
from bench.leaderboard.build import write_leaderboard


def publish_results(results_path: Path, leaderboard: Path) -> Path:
    """Copy `results_path` into `leaderboard/results/` (atomically) and rewrite the pages.

    Returns the published file. A killed earlier publish may have left a temporary beside
    the target; it is removed first, so it is never read as a results file.
    """
    target = leaderboard / "results" / results_path.name
    remove_stale_temporaries(target.parent, target.name)
    with atomic_path(target) as tmp:
        shutil.copyfile(results_path, tmp)
    write_leaderboard(leaderboard / "results", leaderboard / "README.md")
    return target
