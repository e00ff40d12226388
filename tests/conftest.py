"""Shared fixtures: tiny datasets written by the tests themselves (no data in the repo)."""

from __future__ import annotations

import locale
from pathlib import Path

import pytest

from bench.data.dataset import Dataset
from tests.baselines.synthetic import write_head_dataset
from tests.factories import write_tiny_dataset


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Dataset:
    return write_tiny_dataset(tmp_path / "tiny")


@pytest.fixture(autouse=True)
def _restore_locale():
    """GDCM, which the DICOM fixture writers use through SimpleITK, resets the process locale
    to "C"; without this, every later `open()` without an encoding would decode ASCII."""
    saved = locale.setlocale(locale.LC_ALL)
    yield
    locale.setlocale(locale.LC_ALL, saved)


@pytest.fixture(scope="session")
def head_dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """8 patients (one without a lesion in four, one with a second scan), 2 folds."""
    return write_head_dataset(tmp_path_factory.mktemp("heads") / "data")


@pytest.fixture(scope="session")
def run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One work directory for every smoke run (the mirror cache is shared, as in a real run)."""
    return tmp_path_factory.mktemp("runs")
