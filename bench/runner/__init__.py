"""The common inference runner (see `bench.runner.runner` for the loop, `.window` for the engine).

The names below import torch when first used, not when the package is: its torch-free modules
(`bench.runner.postprocess`, which a results file's page describes) stay importable in a core
install. MONAI (slow to import) loads when a case is inferred.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.runner.runner import (
        CaseInput,
        CaseRecord,
        InferenceSettings,
        RunSummary,
        is_finished,
        output_paths,
        predict_cases,
    )

__all__ = [
    "CaseInput",
    "CaseRecord",
    "InferenceSettings",
    "RunSummary",
    "is_finished",
    "output_paths",
    "predict_cases",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("bench.runner.runner"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
