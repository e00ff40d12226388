"""Rank stability under case bootstrap (challengeR-style)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.stats.rank_stability import rank_stability


def _scores(offsets: dict[str, float], n: int = 80, noise: float = 0.05) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    base = rng.uniform(0.4, 0.8, n)
    return pd.DataFrame(
        {m: base + off + rng.normal(0, noise, n) for m, off in offsets.items()},
        index=[f"c{i}" for i in range(n)],
    )


def test_well_separated_methods_keep_their_ranks() -> None:
    result = rank_stability(_scores({"low": 0.0, "mid": 0.2, "top": 0.4}), resamples=300)
    assert [(r.method, r.rank) for r in result] == [("top", 1), ("mid", 2), ("low", 3)]
    assert all(r.kept > 0.99 and r.rank_low == r.rank_high == r.rank for r in result)


def test_close_methods_swap_and_lower_is_better() -> None:
    close = rank_stability(_scores({"a": 0.0, "b": 0.005}), resamples=300)
    assert all(0.2 < r.kept < 0.9 for r in close)
    distances = rank_stability(_scores({"far": 5.0, "near": 1.0}), higher_is_better=False)
    assert distances[0].method == "near"


def test_missing_cases_and_ties() -> None:
    scores = _scores({"a": 0.0, "b": 0.0}, noise=0.0)
    scores.iloc[:10, 1] = np.nan  # b lacks ten cases: resampled with the rest
    result = rank_stability(scores, resamples=100)
    assert {r.method for r in result} == {"a", "b"}
    tied = rank_stability(_scores({"x": 0.0, "y": 0.0}, noise=0.0), resamples=50)
    assert [r.rank for r in tied] == [1, 1] and all(r.kept == 1.0 for r in tied)
