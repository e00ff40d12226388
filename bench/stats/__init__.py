"""Statistics of the protocol: Table 2, Table 3 (non-inferiority), image level, rank stability.

Entry point: `compute_study(per_case, method, roles, config)`; see docs/statistics.md.
"""

from bench.stats.config import Margin, StatsConfig
from bench.stats.noninferiority import BiasTest, PrecisionTest, Verdict
from bench.stats.roles import RaterRoles
from bench.stats.study import RaterComparison, StudyStats, compute_study
from bench.stats.summary import PairSummary, Summary

__all__ = [
    "BiasTest",
    "Margin",
    "PairSummary",
    "PrecisionTest",
    "RaterComparison",
    "RaterRoles",
    "StatsConfig",
    "StudyStats",
    "Summary",
    "Verdict",
    "compute_study",
]
