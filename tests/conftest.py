"""Shared fixtures: tiny datasets written by the tests themselves (no data in the repo)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.data.dataset import Dataset
from tests.factories import write_tiny_dataset


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Dataset:
    return write_tiny_dataset(tmp_path / "tiny")
