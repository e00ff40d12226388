"""Figure 4 of the paper for one case of a predictions folder (`bench show`, method pages)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.data.dataset import Dataset
from bench.errors import InputError
from bench.io import read_image
from bench.leaderboard.figures import case_panel
from bench.predictions import output_paths


def prediction_map(predictions: Path, case_id: str) -> tuple[Path, str]:
    """The case's probability map where the folder has one, else its mask (and which it is)."""
    paths = output_paths(predictions, case_id)
    if paths.probability.is_file():
        return paths.probability, "lesion probability"
    if paths.mask.is_file():
        return paths.mask, "predicted mask (no probability map)"
    raise InputError(
        f"no prediction for this case (neither {paths.mask.name} nor "
        f"probabilities/{paths.probability.name})",
        case_id,
        predictions,
    )


def case_figure(dataset: Dataset, predictions: Path, case_id: str, title: str) -> bytes:
    """The panel of `case_id`: its NCCT, every rater's contour and the prediction's map."""
    case = dataset.case(case_id)
    ct, geometry = read_image(case.image, case_id)
    raters = {rater: read_image(case.labels[rater], case_id)[0] > 0 for rater in dataset.raters}
    path, label = prediction_map(predictions, case_id)
    values, prediction_geometry = read_image(path, case_id)
    problem = geometry.mismatch(prediction_geometry, "image")
    if problem:
        raise InputError(problem, case_id, path)
    values = np.asarray(values, dtype=np.float64)
    if not np.all((values >= 0) & (values <= 1)):  # NaN fails too
        raise InputError("values outside [0, 1] (or not a number)", case_id, path)
    return case_panel(ct, raters, values, geometry.spacing_zyx_mm, title, label)
