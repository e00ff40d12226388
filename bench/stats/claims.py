"""The study's claims about its own variants, tested on one dataset and profile.

The paper (Ostmeier et al.) ranks five nnU-Net variants: the mirrored channel helps, the tuned
training helps, 3D beats 2D. Each claim here is a pair of variants and the one the paper finds
better; it is tested with the paired comparison of `bench.stats.paired` (all tests of the
section one Holm family). A claim whose variants are not all published is not tested, and says
which results file is missing. The paper's best variant, `nnunet3d_mirrored_tuned`, also trains
on the additional baseline scans: its two comparisons include their effect.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

import pandas as pd

from bench.stats.paired import CompareConfig, PairedComparison, compare_methods


@dataclass(frozen=True)
class Claim:
    """`better` scores higher than `worse` against the reference rater, says the paper."""

    name: str
    better: str
    worse: str


STUDY_CLAIMS: tuple[Claim, ...] = (
    Claim("mirrored vs not", "nnunet3d_mirrored", "nnunet3d"),
    Claim("mirrored vs not, tuned", "nnunet3d_mirrored_tuned", "nnunet3d_tuned"),
    Claim("tuned vs not", "nnunet3d_tuned", "nnunet3d"),
    Claim("tuned vs not, mirrored", "nnunet3d_mirrored_tuned", "nnunet3d_mirrored"),
    Claim("3D vs 2D", "nnunet3d", "nnunet2d"),
)


class ClaimVerdict(str, Enum):
    """What one comparison says about the paper's direction."""

    HOLDS = "holds"  # Holm-adjusted p < alpha, median difference the paper's way
    REVERSED = "reversed"  # Holm-adjusted p < alpha, median difference the other way
    NOT_SHOWN = "not shown"  # p at or above alpha (or no median difference)
    NOT_TESTED = "not tested"  # no case where both are defined


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    missing: tuple[str, ...]  # variants without a results file: the claim is not tested
    comparisons: tuple[PairedComparison, ...]  # one per metric: better - worse

    def verdict(self, comparison: PairedComparison, alpha: float) -> ClaimVerdict:
        if math.isnan(comparison.p_adjusted):
            return ClaimVerdict.NOT_TESTED
        favoured = comparison.favours()
        if not comparison.significant(alpha) or favoured is None:
            return ClaimVerdict.NOT_SHOWN
        return ClaimVerdict.HOLDS if favoured == self.claim.better else ClaimVerdict.REVERSED


def assess_claims(
    scores: Mapping[str, pd.DataFrame],
    claims: tuple[Claim, ...] = STUDY_CLAIMS,
    config: CompareConfig | None = None,
) -> tuple[ClaimResult, ...]:
    """Every claim whose variants all have scores; Holm over all the comparisons that ran.

    `scores[method]`: `bench.stats.paired.reference_scores` of every published method.
    """
    config = config or CompareConfig()
    testable = [c for c in claims if c.better in scores and c.worse in scores]
    pairs = [(c.better, c.worse) for c in testable]
    tested = iter(compare_methods(dict(scores), pairs, config))
    results = []
    for claim in claims:
        missing = tuple(m for m in (claim.better, claim.worse) if m not in scores)
        comparisons = () if missing else tuple(next(tested) for _ in config.metrics)
        results.append(ClaimResult(claim, missing, comparisons))
    return tuple(results)
