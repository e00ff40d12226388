"""One tiny synthetic dataset (the one `bench submission check` uses) for the module."""

from __future__ import annotations

import pytest

from bench.check_dataset import write_check_dataset


@pytest.fixture(scope="session")
def check_dataset(tmp_path_factory):
    return write_check_dataset(tmp_path_factory.mktemp("check") / "data")
