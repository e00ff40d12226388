"""The case bootstrap: one (R, n) matrix of resampled case indices shared by every series.

Sharing the indices is the paper's pairing (metric(E, A) and metric(E, M) are resampled on the
same cases) and also the fast path: a resample is fully described by how often it draws each
case, so medians and SDs of any number of series come from that one count matrix without
materialising an (R, n) gather per series.

NaN values (undefined metrics) are dropped inside each resample, like `np.nanmedian` on the
gathered values: the number of usable values varies between resamples, which is part of the
uncertainty being estimated. A resample without usable values gives NaN.
"""

from __future__ import annotations

import warnings

import numpy as np

_CANCELLATION = 1e-10


def _walk_dtype(n_cases: int) -> type[np.signedinteger]:
    """The smallest signed type that holds a cumulative count of up to n_cases draws."""
    return np.int16 if n_cases < np.iinfo(np.int16).max else np.int64


class CaseBootstrap:
    """R resamples (with replacement) of n cases, drawn once from a seeded generator."""

    def __init__(self, n_cases: int, resamples: int, seed: int) -> None:
        if n_cases < 1:
            raise ValueError("the bootstrap needs at least one case")
        self.n_cases = n_cases
        self.resamples = resamples
        rng = np.random.default_rng(seed)
        self.indices = rng.integers(0, n_cases, size=(resamples, n_cases))
        offsets = np.arange(resamples)[:, None] * n_cases
        counts = np.bincount((self.indices + offsets).ravel(), minlength=resamples * n_cases)
        # (n, R): row i says how often each resample drew case i.
        self._counts = np.ascontiguousarray(counts.reshape(resamples, n_cases).T)
        self._counts_small = self._counts.astype(_walk_dtype(n_cases))
        self._counts_float = self._counts.astype(np.float64)

    def weights(self) -> np.ndarray:
        """(n, R) draw counts as floats: column r weighs each case as resample r draws it."""
        view = self._counts_float.view()
        view.flags.writeable = False
        return view

    def medians(self, values: np.ndarray) -> np.ndarray:
        """Median of every resample of every series: (S, n) values -> (S, R) medians.

        Sort each series once; a resample's median sits where its cumulative draw count,
        walked in sorted order, passes half of its usable draws. The walk goes position by
        position over (S, R) small-integer arrays, which stay in cache: O(S * n * R) work
        without an (S, n, R) intermediate.
        """
        values = self._as_series(values)
        n_series = values.shape[0]
        order = np.argsort(values, axis=1, kind="stable")  # NaN sorts last
        sorted_values = np.take_along_axis(values, order, axis=1)
        drawn = self._usable_draws(~np.isnan(values))  # (S, R)
        accumulator = self._counts_small.dtype
        lower = ((drawn - 1) // 2).astype(accumulator)
        upper = (drawn // 2).astype(accumulator)
        walked = np.zeros((n_series, self.resamples), accumulator)
        j_lower = np.zeros_like(walked)
        j_upper = np.zeros_like(walked)
        below = np.empty(walked.shape, bool)
        for position in range(self.n_cases):
            np.add(walked, self._counts_small[order[:, position]], out=walked)
            np.less_equal(walked, lower, out=below)
            j_lower += below
            np.less_equal(walked, upper, out=below)
            j_upper += below
        rows = np.arange(n_series)[:, None]
        last = self.n_cases - 1
        low_values = sorted_values[rows, np.minimum(j_lower, last)]
        high_values = sorted_values[rows, np.minimum(j_upper, last)]
        medians = (low_values + high_values) / 2
        medians[drawn == 0] = np.nan
        return medians

    def _usable_draws(self, usable: np.ndarray) -> np.ndarray:
        """(S, R): how many of each resample's draws hit a defined value of each series.

        Series share few NaN patterns (all overlap metrics of a pair are undefined on the
        same cases), so the product runs over the distinct patterns only.
        """
        patterns, inverse = np.unique(usable, axis=0, return_inverse=True)
        per_pattern = np.einsum("pn,nr->pr", patterns.astype(np.float64), self._counts_float)
        return np.rint(per_pattern).astype(np.int64)[inverse.ravel()]

    def sds(self, values: np.ndarray, ddof: int = 1) -> np.ndarray:
        """Standard deviation of every resample of every series: (S, n) -> (S, R).

        Weighted sums against the count matrix; values are centred first so that the
        one-pass variance does not lose precision. `einsum` rather than BLAS: a multithreaded
        BLAS on a few busy cores was 50x slower on this small product than a plain loop.
        """
        values = self._as_series(values)
        usable = ~np.isnan(values)
        defined = np.where(usable, values, 0.0)
        centre = defined.sum(axis=1, keepdims=True) / np.maximum(usable.sum(1, keepdims=True), 1)
        centred = np.where(usable, defined - centre, 0.0)
        stacked = np.concatenate([usable.astype(np.float64), centred, centred * centred])
        sums = np.einsum("sn,nr->sr", stacked, self._counts_float)
        drawn, total, squares = np.split(sums, 3)
        with np.errstate(invalid="ignore", divide="ignore"):
            variance = (squares - total * total / drawn) / (drawn - ddof)
        # Below this share of the mean square the one-pass formula only shows rounding
        # (a resample that drew one value many times): call it exactly 0.
        variance[variance <= _CANCELLATION * squares / np.maximum(drawn, 1)] = 0.0
        variance[drawn <= ddof] = np.nan
        return np.sqrt(np.maximum(variance, 0.0))

    def _as_series(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[None, :]
        if values.ndim != 2 or values.shape[1] != self.n_cases:
            raise ValueError(f"expected (S, {self.n_cases}) values, got {values.shape}")
        return values


def percentile_interval(boot: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval along the last axis, ignoring NaN resamples."""
    tail = 100 * (1 - level) / 2
    quantiles = [tail, 100 - tail]
    if not np.isnan(boot).any():
        low, high = np.percentile(boot, quantiles, axis=-1)
        return low, high
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN series: NaN interval
        low, high = np.nanpercentile(boot, quantiles, axis=-1)
    return low, high
