"""The common inference runner (see `bench.runner.runner` for the loop, `.window` for the engine).

Importing this package imports torch; MONAI (slow to import) loads when a case is inferred.
"""

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
