"""Read every results file and group them into rankings that may be compared.

Results are only ranked together when they share the dataset (name and content hash) and the
profile: a demo-profile run never competes with a paper-profile run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.errors import BenchError
from bench.metric_names import BY_NAME, Direction
from bench.results import Results, load_results
from bench.stats.rank_stability import RankStability, rank_stability

RANKING_METRIC = "SDT5"  # surface Dice at 5 mm against the reference rater
RANK_RESAMPLES = 1000
RANK_SEED = 0


@dataclass(frozen=True)
class Entry:
    results: Results
    stability: RankStability


@dataclass(frozen=True)
class Ranking:
    dataset: str
    dataset_sha256: str
    profile: str
    reference: str
    independent: tuple[str, ...]  # union over the entries, in first-seen order
    entries: tuple[Entry, ...]  # best first


def load_all(results_dir: Path) -> list[Results]:
    """Every `*.json` under `results_dir`, validated; two files for one key is an error.

    Hidden files are skipped: `.<name>.<random>.tmp.json` is a copy that a killed
    `bench run --publish` never finished (`bench.io.atomic_path`).
    """
    if not results_dir.is_dir():
        raise BenchError(f"{results_dir}: results directory not found")
    loaded: dict[str, Path] = {}
    out = []
    for path in sorted(p for p in results_dir.glob("*.json") if not p.name.startswith(".")):
        results = load_results(path)
        if results.stem in loaded:
            raise BenchError(f"{path}: same method, dataset and profile as {loaded[results.stem]}")
        loaded[results.stem] = path
        out.append(results)
    return out


def rankings(all_results: list[Results]) -> list[Ranking]:
    groups: dict[tuple[str, str, str], list[Results]] = {}
    for results in all_results:
        groups.setdefault(results.group, []).append(results)
    return [_ranking(key, members) for key, members in sorted(groups.items())]


def _ranking(key: tuple[str, str, str], members: list[Results]) -> Ranking:
    references = {r.stats.roles.reference for r in members}
    if len(references) > 1:
        raise BenchError(
            f"results for dataset {key[0]} (profile {key[2]}) disagree on the "
            f"reference rater: {', '.join(sorted(references))}"
        )
    reference = references.pop()
    independent: list[str] = []
    for results in members:
        independent += [r for r in results.stats.roles.independent if r not in independent]
    scores = pd.concat({r.method.name: _ranking_scores(r, reference) for r in members}, axis=1)
    higher = BY_NAME[RANKING_METRIC].direction is Direction.HIGHER_IS_BETTER
    stability = {
        s.method: s
        for s in rank_stability(scores, higher, resamples=RANK_RESAMPLES, seed=RANK_SEED)
    }
    entries = sorted(
        (Entry(r, stability[r.method.name]) for r in members),
        key=lambda e: (e.stability.rank, e.results.method.name),
    )
    return Ranking(key[0], key[1], key[2], reference, tuple(independent), tuple(entries))


def _ranking_scores(results: Results, reference: str) -> pd.Series:
    rows = results.method_rows(reference)
    return pd.Series(
        rows[RANKING_METRIC].to_numpy(np.float64), index=rows["case"].to_numpy(), dtype=float
    )
