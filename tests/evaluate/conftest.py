"""Run the evaluator's tests on both code paths: compiled (numba) and plain numpy."""

from __future__ import annotations

import pytest

from bench.evaluate import _kernels

BACKENDS = ["numba", "numpy"] if _kernels.HAVE_NUMBA else ["numpy"]


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    """Parametrise a test over the available code paths (numba's kernels, or numpy's)."""
    monkeypatch.setattr(_kernels, "HAVE_NUMBA", request.param == "numba")
    return request.param
