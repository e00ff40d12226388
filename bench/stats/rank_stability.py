"""How stable a leaderboard ranking is under resampling of the cases (challengeR-style).

Methods are ranked by the median of one metric. The cases are bootstrapped with one shared
index matrix over the union of cases, so methods scored on the same cases are resampled
together (a case a method lacks reads as undefined for it), and each resample gives a ranking.
A method whose rank survives most resamples holds its place on evidence, not on luck.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from bench.stats.bootstrap import CaseBootstrap


@dataclass(frozen=True)
class RankStability:
    method: str
    rank: int  # observed rank, 1 = best; ties share the best rank
    median: float  # observed median of the ranking metric
    kept: float  # share of resamples in which the method has exactly its observed rank
    rank_low: int  # percentile interval of the bootstrap ranks
    rank_high: int


def rank_by_median(medians: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Ranks (1 = best, ties share the best rank) along axis 0; NaN medians rank last."""
    score = -medians if higher_is_better else medians.copy()
    score = np.where(np.isnan(score), np.inf, score)
    return stats.rankdata(score, method="min", axis=0).astype(np.int64)


def rank_stability(
    scores: pd.DataFrame,
    higher_is_better: bool = True,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.90,
) -> tuple[RankStability, ...]:
    """`scores`: one row per case, one column per method, NaN where undefined or missing."""
    if scores.shape[1] == 0:
        return ()
    scores = scores.sort_index()
    values = scores.to_numpy(np.float64).T  # (methods, cases)
    with np.errstate(all="ignore"):
        observed = np.array([np.nanmedian(v) if (~np.isnan(v)).any() else np.nan for v in values])
    observed_rank = rank_by_median(observed[:, None], higher_is_better)[:, 0]
    boot = CaseBootstrap(values.shape[1], resamples, seed)
    boot_rank = rank_by_median(boot.medians(values), higher_is_better)  # (methods, R)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(boot_rank, [tail, 100 - tail], axis=1, method="nearest")
    kept = (boot_rank == observed_rank[:, None]).mean(axis=1)
    out = [
        RankStability(
            method=str(method),
            rank=int(observed_rank[i]),
            median=float(observed[i]),
            kept=float(kept[i]),
            rank_low=int(low[i]),
            rank_high=int(high[i]),
        )
        for i, method in enumerate(scores.columns)
    ]
    return tuple(sorted(out, key=lambda r: (r.rank, r.method)))
