"""Who is who in a study: the reference rater, the independent raters and the truth.

The names come from the dataset manifest; `from_table` guesses them from a per-case table when
no manifest is at hand (`bench stats` without `--dataset`), and says what it assumed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from bench.errors import InputError

log = logging.getLogger(__name__)

TRUTH_NAME = "truth"  # the phantom's hidden true lesion, as the manifest usually names it
DEFAULT_REFERENCE = "A"  # the paper's training rater


@dataclass(frozen=True)
class RaterRoles:
    reference: str
    independent: tuple[str, ...]
    truth: str | None = None

    def __post_init__(self) -> None:
        names = [self.reference, *self.independent]
        if len(set(names)) != len(names):
            raise InputError(f"rater names repeat: {', '.join(names)}")
        if self.truth is not None and self.truth in names:
            raise InputError(f"the truth label set {self.truth!r} is also named as a rater")

    @property
    def raters(self) -> tuple[str, ...]:
        return (self.reference, *self.independent)

    @classmethod
    def from_dataset(cls, dataset: object) -> RaterRoles:
        """From a loaded `bench.data.dataset.Dataset` (any object with the same fields)."""
        return cls(
            reference=dataset.reference_rater,  # type: ignore[attr-defined]
            independent=tuple(dataset.independent_raters),  # type: ignore[attr-defined]
            truth=dataset.truth,  # type: ignore[attr-defined]
        )

    @classmethod
    def from_table(
        cls,
        table: pd.DataFrame,
        method: str,
        reference: str | None = None,
        independent: Sequence[str] | None = None,
        truth: str | None = None,
    ) -> RaterRoles:
        """Roles from the names in a per-case table; explicit arguments win."""
        tests = set(table["test"])
        if method not in tests:
            known = ", ".join(sorted(tests)) or "none"
            raise InputError(
                f"method {method!r} is not a test in the per-case table (tests: {known})"
            )
        names = (set(table["reference"]) | tests) - {method}
        if truth is None and TRUTH_NAME in names:
            truth = TRUTH_NAME
        raters = sorted(names - {truth})
        if not raters:
            raise InputError("the per-case table names no rater besides the method")
        if reference is None:
            reference = DEFAULT_REFERENCE if DEFAULT_REFERENCE in raters else raters[0]
            log.info("reference rater not given: assuming %s", reference)
        if reference not in raters:
            raise InputError(
                f"reference rater {reference!r} is not in the per-case table "
                f"(raters: {', '.join(raters)})"
            )
        if independent is None:
            independent = [r for r in raters if r != reference]
            log.info("independent raters not given: assuming %s", ", ".join(independent))
        unknown = [r for r in independent if r not in raters]
        if unknown:
            raise InputError(
                f"independent rater(s) {', '.join(unknown)} not in the per-case "
                f"table (raters: {', '.join(raters)})"
            )
        return cls(reference, tuple(independent), truth)

    def required_pairs(self, method: str) -> list[tuple[str, str]]:
        """(reference, test) pairs that Table 2 and Table 3 cannot do without."""
        pairs = [(self.reference, method)]
        for rater in self.independent:
            pairs += [(rater, self.reference), (rater, method)]
        return pairs

    def truth_pairs(self, method: str) -> list[tuple[str, str]]:
        if self.truth is None:
            return []
        return [(self.truth, test) for test in (*self.raters, method)]
