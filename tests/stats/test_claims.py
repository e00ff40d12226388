"""The study's claims: which are tested, their verdicts, and one Holm family over what ran."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.stats.claims import STUDY_CLAIMS, Claim, ClaimVerdict, assess_claims
from bench.stats.paired import CompareConfig

CASES = [f"c{i}" for i in range(8)]


def _scores(values: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"SDT5": values, "Dice": values}, index=CASES[: len(values)])


BASE = [0.30, 0.42, 0.51, 0.26, 0.64, 0.35, 0.58, 0.47]
UP = [b + 0.01 * (i + 1) for i, b in enumerate(BASE)]  # 8 positive d: exact p = 2/256
SOME_UP = [b + 0.01 * (i + 1) * (-1) ** i for i, b in enumerate(BASE)]  # mixed signs


def test_the_study_claims_name_the_five_variants() -> None:
    named = {m for c in STUDY_CLAIMS for m in (c.better, c.worse)}
    assert named == {
        "nnunet3d",
        "nnunet2d",
        "nnunet3d_tuned",
        "nnunet3d_mirrored",
        "nnunet3d_mirrored_tuned",
    }
    assert [c.name for c in STUDY_CLAIMS] == [
        "mirrored vs not",
        "mirrored vs not, tuned",
        "tuned vs not",
        "tuned vs not, mirrored",
        "3D vs 2D",
    ]


def test_verdicts_and_missing_variants() -> None:
    """holds: better scores higher on all 8 cases (p = 2/256 per metric, Holm over 4 tests:
    4 * 2/256 = 0.03125 < 0.05); reversed: the paper's worse variant scores higher;
    not shown: mixed signs; not tested: a variant without scores."""
    claims = (
        Claim("up", "b1", "w1"),
        Claim("down", "b2", "w2"),
        Claim("absent", "b3", "w3"),
    )
    scores = {"b1": _scores(UP), "w1": _scores(BASE), "b2": _scores(BASE), "w2": _scores(UP)}
    config = CompareConfig(resamples=100)
    up, down, absent = assess_claims(scores, claims, config)
    assert [c.p_value for c in up.comparisons] == pytest.approx([2 / 256, 2 / 256])
    assert [c.p_adjusted for c in (*up.comparisons, *down.comparisons)] == pytest.approx(
        [4 * 2 / 256] * 4
    )
    assert {up.verdict(c, 0.05) for c in up.comparisons} == {ClaimVerdict.HOLDS}
    assert {down.verdict(c, 0.05) for c in down.comparisons} == {ClaimVerdict.REVERSED}
    assert absent.missing == ("b3", "w3") and absent.comparisons == ()
    assert {up.verdict(c, 0.01) for c in up.comparisons} == {ClaimVerdict.NOT_SHOWN}

    (mixed,) = assess_claims({"b1": _scores(SOME_UP), "w1": _scores(BASE)}, claims[:1], config)
    assert {mixed.verdict(c, 0.05) for c in mixed.comparisons} == {ClaimVerdict.NOT_SHOWN}


def test_only_the_published_half_of_a_claim_is_named() -> None:
    results = assess_claims({"nnunet3d_mirrored_tuned": _scores(BASE)})
    missing = {r.claim.name: r.missing for r in results}
    assert missing == {
        "mirrored vs not": ("nnunet3d_mirrored", "nnunet3d"),
        "mirrored vs not, tuned": ("nnunet3d_tuned",),
        "tuned vs not": ("nnunet3d_tuned", "nnunet3d"),
        "tuned vs not, mirrored": ("nnunet3d_mirrored",),
        "3D vs 2D": ("nnunet3d", "nnunet2d"),
    }
