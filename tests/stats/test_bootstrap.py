"""The shared case bootstrap against the obvious computation on explicit resamples."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bench.stats.bootstrap import CaseBootstrap, percentile_interval


def _explicit(values: np.ndarray, boot: CaseBootstrap, reducer) -> np.ndarray:
    """Gather every resample and reduce it with numpy's NaN-aware function."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return reducer(values[:, boot.indices], axis=-1)


@pytest.mark.parametrize("n_cases", [1, 2, 3, 8, 200, 300])
def test_medians_equal_nanmedian_of_each_resample(n_cases: int) -> None:
    rng = np.random.default_rng(n_cases)
    values = rng.normal(size=(6, n_cases))
    values[values < -0.8] = np.nan  # undefined metrics
    values[1] = np.round(values[1], 1)  # ties
    values[2] = np.nan  # a metric never defined
    boot = CaseBootstrap(n_cases, resamples=150, seed=1)
    expected = _explicit(values, boot, np.nanmedian)
    np.testing.assert_allclose(boot.medians(values), expected, rtol=0, atol=0)


@pytest.mark.parametrize("n_cases", [2, 3, 8, 200])
def test_sds_equal_nanstd_of_each_resample(n_cases: int) -> None:
    rng = np.random.default_rng(n_cases)
    values = rng.normal(10, 3, size=(5, n_cases))
    values[values < 8] = np.nan
    values[0] = 7.0  # constant: SD exactly 0
    boot = CaseBootstrap(n_cases, resamples=150, seed=2)
    expected = _explicit(values, boot, lambda x, axis: np.nanstd(x, axis=axis, ddof=1))
    np.testing.assert_allclose(boot.sds(values), expected, rtol=1e-9, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 4), st.integers(1, 30)),
        elements=st.one_of(st.floats(-1e3, 1e3), st.just(np.nan)),
    ),
    st.integers(0, 2**16),
)
def test_medians_property(values: np.ndarray, seed: int) -> None:
    boot = CaseBootstrap(values.shape[1], resamples=20, seed=seed)
    np.testing.assert_allclose(boot.medians(values), _explicit(values, boot, np.nanmedian))


def test_indices_are_reproducible_by_seed() -> None:
    first, again = CaseBootstrap(50, 100, seed=7), CaseBootstrap(50, 100, seed=7)
    other = CaseBootstrap(50, 100, seed=8)
    np.testing.assert_array_equal(first.indices, again.indices)
    assert not np.array_equal(first.indices, other.indices)
    assert first.indices.shape == (100, 50)
    assert first.indices.min() >= 0 and first.indices.max() < 50


def test_percentile_interval_is_numpys_percentile() -> None:
    boot = np.random.default_rng(0).normal(size=(3, 1000))
    low, high = percentile_interval(boot, 0.90)
    np.testing.assert_allclose(low, np.percentile(boot, 5, axis=1))
    np.testing.assert_allclose(high, np.percentile(boot, 95, axis=1))
    boot[0, :10] = np.nan  # NaN resamples are ignored
    low, _ = percentile_interval(boot, 0.90)
    assert low[0] == pytest.approx(np.percentile(boot[0, 10:], 5))


def test_rejects_misaligned_series() -> None:
    with pytest.raises(ValueError, match="expected"):
        CaseBootstrap(5, 10, 0).medians(np.zeros((2, 4)))
