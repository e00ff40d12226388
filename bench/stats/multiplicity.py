"""Holm-Bonferroni step-down adjustment of a family of p-values."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values in the input order; NaN (untested) stays NaN and is not counted.

    Sorted ascending, the i-th (1-based) of m p-values becomes max over j <= i of
    min(1, (m - j + 1) * p_(j)); rejecting adjusted p < alpha controls the family-wise error.
    """
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    tested = ~np.isnan(p)
    finite = p[tested]
    m = finite.size
    if m == 0:
        return adjusted
    order = np.argsort(finite, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * finite[order])
    result = np.empty(m)
    result[order] = np.minimum(stepped, 1.0)
    adjusted[tested] = result
    return adjusted
