"""Holm-Bonferroni against a hand computation."""

from __future__ import annotations

import numpy as np

from bench.stats.multiplicity import holm


def test_holm_hand_computed() -> None:
    # Sorted: 0.005 x4 = 0.02; 0.01 x3 = 0.03; 0.03 x2 = 0.06; 0.04 x1 = 0.04 -> max(0.06, 0.04).
    p = [0.01, 0.04, 0.03, 0.005]
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_skips_untested() -> None:
    adjusted = holm([0.5, np.nan, 0.4])
    # m = 2 tested: 0.4 x2 = 0.8; 0.5 x1 = 0.5 -> max(0.8, 0.5) = 0.8.
    np.testing.assert_allclose(adjusted, [0.8, np.nan, 0.8])
    np.testing.assert_allclose(holm([0.6, 0.7]), [1.0, 1.0])
    assert holm([]).size == 0
    assert np.isnan(holm([np.nan])).all()


def test_holm_is_monotone_in_the_raw_order() -> None:
    p = np.random.default_rng(3).uniform(0, 0.2, 25)
    adjusted = holm(p)
    order = np.argsort(p)
    assert (np.diff(adjusted[order]) >= 0).all()
    assert (adjusted >= p).all()
