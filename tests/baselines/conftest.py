"""Session fixtures: a synthetic head dataset and one shared run folder for the nnU-Net tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.data.dataset import Dataset
from tests.baselines.synthetic import write_head_dataset


@pytest.fixture(scope="session")
def head_dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """8 patients (one without a lesion in four, one with a second scan), 2 folds."""
    return write_head_dataset(tmp_path_factory.mktemp("heads") / "data")


@pytest.fixture(scope="session")
def run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One work directory for every smoke run (the mirror cache is shared, as in a real run)."""
    return tmp_path_factory.mktemp("runs")
