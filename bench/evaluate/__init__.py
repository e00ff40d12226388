"""The evaluator: one scorer for every method and every rater (see docs/evaluation.md).

- `score_pair`: one (reference, test) pair of (z, y, x) arrays -> `PairMetrics`.
- `prepare_mask` (`prepare_masks`) + `score_prepared` (`score_pairs`): prepare each mask once,
  pair it with many others.
- `score_study`, `score_folders`: every pair of a study, or two folders of NIfTI masks, into a
  tidy table with the columns of `bench.metric_names.PER_CASE_COLUMNS`, cached per case.
- `image_level`, `image_level_table`: detection at a volume threshold over a set of cases.
"""

from bench.evaluate.image_level import (
    DEFAULT_THRESHOLD_ML,
    ImageLevel,
    image_level,
    image_level_table,
    mann_whitney_auc,
)
from bench.evaluate.masks import PreparedMask, prepare_mask, prepare_masks
from bench.evaluate.pair import (
    SDT_TOLERANCES_MM,
    Compat,
    PairMetrics,
    score_pair,
    score_pairs,
    score_prepared,
)
from bench.evaluate.study import score_folders, score_study, study_pairs

__all__ = [
    "DEFAULT_THRESHOLD_ML",
    "SDT_TOLERANCES_MM",
    "Compat",
    "ImageLevel",
    "PairMetrics",
    "PreparedMask",
    "image_level",
    "image_level_table",
    "mann_whitney_auc",
    "prepare_mask",
    "prepare_masks",
    "score_folders",
    "score_pair",
    "score_pairs",
    "score_prepared",
    "score_study",
    "study_pairs",
]
