"""Statistics of the protocol: Table 2, Table 3 (non-inferiority), image level, rank stability.

Entry point: `compute_study(per_case, method, roles, config)`; see docs/statistics.md.
Exports are imported lazily (`bench.lazy`): the CLI reads `bench.stats.config`
without importing scipy.
"""

from bench.lazy import lazy_exports

_EXPORTS = {
    "Margin": "bench.stats.config",
    "StatsConfig": "bench.stats.config",
    "BiasTest": "bench.stats.noninferiority",
    "PrecisionTest": "bench.stats.noninferiority",
    "Verdict": "bench.stats.noninferiority",
    "RaterRoles": "bench.stats.roles",
    "RaterComparison": "bench.stats.study",
    "StudyStats": "bench.stats.study",
    "compute_study": "bench.stats.study",
    "PairSummary": "bench.stats.summary",
    "Summary": "bench.stats.summary",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
