"""The method adapter contract that every built-in method and submission implements.

Like a scikit-learn estimator: the constructor stores settings only, `fit` does the work
and returns a predictor that the common runner drives (adapters never run their own
sliding window, so every method's runtime is measured the same way).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar


class MethodAdapter(ABC):
    """Base class of every registered method."""

    #: One line for `bench list`.
    description: ClassVar[str] = ""
    #: Bumped when the method's behaviour changes, so cached results become stale.
    version: ClassVar[str] = "1"
    #: The channels the method reads, e.g. ("image",) or ("image", "mirrored").
    input_channels: ClassVar[tuple[str, ...]] = ("image",)

    @abstractmethod
    def fit(self, train_cases: Any, fold: int, workdir: Path, profile: Any) -> Any:
        """Train on `train_cases` for `fold` inside `workdir`; return a predictor."""
