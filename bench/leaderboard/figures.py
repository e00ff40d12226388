"""Volume scatter and Bland-Altman plots of a method against each rater, as one PNG.

Rendered through the Agg canvas directly (no pyplot state, no GUI backend) with matplotlib's
default style, a fixed size and dpi, and no "Software" metadata, so the same results give the
same bytes on the same matplotlib version.
"""

from __future__ import annotations

import io

import matplotlib.style
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench.results import Results

DPI = 100
PANEL_INCHES = 3.6


def _volumes(results: Results, rater: str) -> tuple[np.ndarray, np.ndarray]:
    """(rater volume, method volume) per case where both are defined."""
    table = results.per_case.to_frame()
    rows = table[(table["reference"] == rater) & (table["test"] == results.method.name)]
    rater_ml = rows["V_ref"].to_numpy(np.float64)
    method_ml = rows["V_test"].to_numpy(np.float64)
    keep = ~(np.isnan(rater_ml) | np.isnan(method_ml))
    return rater_ml[keep], method_ml[keep]


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def volume_figure(results: Results, raters: tuple[str, ...]) -> bytes:
    """Top row: method volume against each rater's (identity line). Bottom row: Bland-Altman,
    difference (method - rater) against the mean, with the bias and 95% limits of agreement."""
    method = results.method.name
    columns = max(len(raters), 1)
    with matplotlib.style.context("default"):
        figure = Figure(figsize=(PANEL_INCHES * columns, 2 * PANEL_INCHES), dpi=DPI)
        FigureCanvasAgg(figure)
        for i, rater in enumerate(raters):
            rater_ml, method_ml = _volumes(results, rater)
            _scatter(figure.add_subplot(2, columns, i + 1), rater_ml, method_ml, rater, method)
            _bland_altman(
                figure.add_subplot(2, columns, columns + i + 1), rater_ml, method_ml, rater, method
            )
        figure.tight_layout()
        return _png(figure)


def _scatter(axes, rater_ml: np.ndarray, method_ml: np.ndarray, rater: str, method: str) -> None:
    top = float(max(rater_ml.max(initial=0), method_ml.max(initial=0), 1.0)) * 1.05
    axes.plot([0, top], [0, top], color="0.6", linewidth=1)
    axes.scatter(rater_ml, method_ml, s=12, alpha=0.7)
    axes.set(
        xlim=(0, top),
        ylim=(0, top),
        xlabel=f"rater {rater} volume [ml]",
        ylabel=f"{method} volume [ml]",
        title=f"{method} vs {rater}",
    )
    axes.set_aspect("equal")


def _bland_altman(
    axes, rater_ml: np.ndarray, method_ml: np.ndarray, rater: str, method: str
) -> None:
    mean, difference = (rater_ml + method_ml) / 2, method_ml - rater_ml
    axes.scatter(mean, difference, s=12, alpha=0.7)
    if difference.size > 1:
        bias, spread = float(difference.mean()), 1.96 * float(difference.std(ddof=1))
        for level, style in ((bias, "-"), (bias - spread, "--"), (bias + spread, "--")):
            axes.axhline(level, color="0.4", linestyle=style, linewidth=1)
    axes.axhline(0, color="0.8", linewidth=1)
    axes.set(
        xlabel="mean volume [ml]",
        ylabel=f"{method} - {rater} [ml]",
        title=f"Bland-Altman, {method} vs {rater}",
    )


def curves_figure(results: Results) -> bytes:
    """Per fold, the training loss (left) and the validation pseudo-Dice (right) by epoch,
    so that a reader sees whether the model had converged when training stopped."""
    with matplotlib.style.context("default"):
        figure = Figure(figsize=(2 * PANEL_INCHES, PANEL_INCHES), dpi=DPI)
        FigureCanvasAgg(figure)
        loss, dice = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
        for fold, curve in sorted(results.training_curves.items(), key=lambda kv: int(kv[0])):
            loss.plot(np.arange(len(curve.train_loss)), curve.train_loss, label=f"fold {fold}")
            dice.plot(np.arange(len(curve.val_pseudo_dice)), curve.val_pseudo_dice)
        loss.set(xlabel="epoch", ylabel="training loss", title=f"{results.method.name}: loss")
        dice.set(xlabel="epoch", ylabel="pseudo-Dice", ylim=(0, 1), title="validation")
        loss.legend(fontsize="small")
        figure.tight_layout()
        return _png(figure)
