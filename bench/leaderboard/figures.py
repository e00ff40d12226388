"""The leaderboard's figures: a ranking's forest plot, and per method the volume scatter and
Bland-Altman plots against each rater, the reliability diagram and the learning curves.

Rendered through the Agg canvas directly (no pyplot state, no GUI backend) with matplotlib's
default style, a fixed size and dpi, and no "Software" metadata, so the same results give the
same bytes on the same matplotlib version.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.style
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bench.results import Results

DPI = 100
PANEL_INCHES = 3.6


def _volumes(results: Results, rater: str) -> tuple[np.ndarray, np.ndarray]:
    """(rater volume, method volume) per case where both are defined."""
    rows = results.method_rows(rater)
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
    difference (method - rater) against the mean, with the bias and 95% limits of agreement.

    The method is named once, in the figure's title: panel titles stay short, so that a long
    method name cannot run one panel's title into its neighbour's.
    """
    columns = max(len(raters), 1)
    with matplotlib.style.context("default"):
        figure = Figure(figsize=(PANEL_INCHES * columns, 2 * PANEL_INCHES + 0.4), dpi=DPI)
        FigureCanvasAgg(figure)
        for i, rater in enumerate(raters):
            rater_ml, method_ml = _volumes(results, rater)
            _scatter(figure.add_subplot(2, columns, i + 1), rater_ml, method_ml, rater)
            _bland_altman(
                figure.add_subplot(2, columns, columns + i + 1), rater_ml, method_ml, rater
            )
        figure.suptitle(f"{results.method.name}: volumes against each rater")
        figure.tight_layout()
        return _png(figure)


def _scatter(axes, rater_ml: np.ndarray, method_ml: np.ndarray, rater: str) -> None:
    top = float(max(rater_ml.max(initial=0), method_ml.max(initial=0), 1.0)) * 1.05
    axes.plot([0, top], [0, top], color="0.6", linewidth=1)
    axes.scatter(rater_ml, method_ml, s=12, alpha=0.7)
    axes.set(
        xlim=(0, top),
        ylim=(0, top),
        xlabel=f"rater {rater} volume [ml]",
        ylabel="method volume [ml]",
        title=f"against rater {rater}",
    )
    axes.set_aspect("equal")


def _bland_altman(axes, rater_ml: np.ndarray, method_ml: np.ndarray, rater: str) -> None:
    mean, difference = (rater_ml + method_ml) / 2, method_ml - rater_ml
    axes.scatter(mean, difference, s=12, alpha=0.7)
    if difference.size > 1:
        bias, spread = float(difference.mean()), 1.96 * float(difference.std(ddof=1))
        for level, style in ((bias, "-"), (bias - spread, "--"), (bias + spread, "--")):
            axes.axhline(level, color="0.4", linestyle=style, linewidth=1)
    axes.axhline(0, color="0.8", linewidth=1)
    axes.set(
        xlabel="mean volume [ml]",
        ylabel=f"method - rater {rater} [ml]",
        title=f"Bland-Altman, rater {rater}",
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


@dataclass(frozen=True)
class ForestRow:
    """One method's ranking metric against the reference: median and CI (NaN: undefined)."""

    method: str
    median: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class RaterBand:
    """An independent rater's agreement with the reference on the same metric."""

    rater: str
    median: float
    ci_low: float
    ci_high: float


def forest_figure(
    rows: Sequence[ForestRow], bands: Sequence[RaterBand], metric: str, reference: str, level: str
) -> bytes:
    """Per method (best on top) the median and CI of `metric` against the reference rater;
    below them, per independent rater, its own agreement with the reference, drawn again
    across every row as a band (CI) with a line (median): a method inside a band agrees with
    the reference as that rater does."""
    labels = [row.method for row in rows] + [f"rater {b.rater}" for b in bands]
    height = 1.2 + 0.36 * max(len(labels), 1)
    colours = ("tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink")
    with matplotlib.style.context("default"):
        figure = Figure(figsize=(7.5, height), dpi=DPI)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot(1, 1, 1)
        y = np.arange(len(labels))[::-1]
        for band, colour, at in zip(bands, colours * len(bands), y[len(rows) :], strict=False):
            if math.isnan(band.median):
                continue
            axes.axvspan(band.ci_low, band.ci_high, color=colour, alpha=0.15, linewidth=0)
            axes.axvline(band.median, color=colour, linewidth=1, alpha=0.8)
            _interval(axes, band.median, band.ci_low, band.ci_high, at, colour, "D")
        for row, at in zip(rows, y, strict=False):
            if math.isnan(row.median):
                axes.text(0.01, at, "undefined", va="center", fontsize="small", color="0.4")
            else:
                _interval(axes, row.median, row.ci_low, row.ci_high, at, "tab:blue", "o")
        if bands:
            axes.axhline(y[len(rows) - 1] - 0.5, color="0.5", linewidth=0.8)
        axes.set_yticks(y, labels)
        for tick, colour in zip(axes.get_yticklabels()[len(rows) :], colours, strict=False):
            tick.set_color(colour)
        axes.set(
            xlim=(0, 1),
            ylim=(-0.6, len(labels) - 0.4),
            xlabel=f"{metric} against rater {reference}: median and {level} CI",
        )
        axes.grid(axis="x", color="0.9")
        figure.tight_layout()
        return _png(figure)


def _interval(axes, median: float, low: float, high: float, at: float, colour: str, marker: str):
    axes.errorbar(
        median, at, xerr=[[median - low], [high - median]], fmt=marker, color=colour, capsize=3
    )


def calibration_figure(results: Results) -> bytes:
    """Reliability diagram per calibration target (truth first): the observed share per bin
    (bars, and dots at the bin's mean probability) against the identity of a calibrated model,
    with each bin's voxel count below on a log scale (empty bins: no bar)."""
    order = {"truth": 0, "raters": 1}
    targets = sorted(results.calibration.values(), key=lambda t: order.get(t.target, 2))
    columns = max(len(targets), 1)
    with matplotlib.style.context("default"):
        figure = Figure(figsize=(PANEL_INCHES * columns, PANEL_INCHES * 1.5), dpi=DPI)
        FigureCanvasAgg(figure)
        grid = figure.add_gridspec(2, columns, height_ratios=(3, 1))
        for i, target in enumerate(targets):
            diagram = figure.add_subplot(grid[0, i])
            counts = figure.add_subplot(grid[1, i], sharex=diagram)
            bins = len(target.bin_count)
            left = np.linspace(0, 1, bins + 1)[:-1]
            observed = np.asarray(target.bin_observed, dtype=np.float64)
            filled = np.asarray(target.bin_count) > 0
            diagram.plot([0, 1], [0, 1], color="0.6", linewidth=1)
            diagram.bar(
                left[filled],
                observed[filled],
                width=1 / bins,
                align="edge",
                alpha=0.5,
                edgecolor="tab:blue",
            )
            diagram.plot(target.bin_probability, observed, "o-", color="tab:blue", markersize=4)
            auc = "-" if math.isnan(target.auc) else f"{target.auc:.3f}"
            diagram.set(
                xlim=(0, 1),
                ylim=(-0.02, 1.02),
                ylabel="lesion share" if target.target == "truth" else "raters' agreement",
                title=f"against the {target.target}\nECE {target.ece:.3f}, AUC {auc}",
            )
            diagram.tick_params(labelbottom=False)
            counts.bar(
                left[filled],
                np.asarray(target.bin_count)[filled],
                width=1 / bins,
                align="edge",
                color="0.6",
            )
            counts.set(yscale="log", xlabel="method's probability", ylabel="voxels")
        figure.suptitle(f"{results.method.name}: calibration of the voxel probabilities")
        figure.tight_layout()
        return _png(figure)


RATER_COLOURS = ("#00e5ff", "#ffd400", "#ff3df5", "#7CFC00", "#ff8c00")
CT_WINDOW_HU = (0.0, 80.0)  # brain window: early ischemia is a few HU darker than normal tissue


def lesion_slice(masks: Sequence[np.ndarray]) -> int:
    """The axial slice (z) with the largest area of the masks' union (the middle one if empty)."""
    union = np.logical_or.reduce([np.asarray(m, dtype=bool) for m in masks])
    area = union.sum(axis=(1, 2))
    return int(np.argmax(area)) if area.any() else union.shape[0] // 2


def case_panel(
    ct_hu: np.ndarray,
    raters: dict[str, np.ndarray],
    probability: np.ndarray,
    spacing_zyx_mm: Sequence[float],
    title: str,
    probability_label: str = "lesion probability",
) -> bytes:
    """Figure 4 of the paper for one case: the NCCT slice through the lesion (window 0-80 HU)
    with every rater's contour (left), and the method's probability map over it with the same
    contours (right). Arrays are (z, y, x) on one grid; the slice is `lesion_slice`."""
    z = lesion_slice(list(raters.values()))
    _, dy, dx = spacing_zyx_mm
    rows, columns = ct_hu.shape[1:]
    extent = (0, columns * dx, rows * dy, 0)  # mm, so that anisotropic pixels keep their shape
    with matplotlib.style.context("default"):
        figure = Figure(figsize=(9.6, 4.8), dpi=DPI)
        FigureCanvasAgg(figure)
        ct_axes, map_axes = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
        for axes in (ct_axes, map_axes):
            axes.imshow(
                ct_hu[z],
                cmap="gray",
                vmin=CT_WINDOW_HU[0],
                vmax=CT_WINDOW_HU[1],
                extent=extent,
                interpolation="nearest",
            )
        shown = np.ma.masked_less(np.asarray(probability[z], dtype=np.float64), 0.05)
        image = map_axes.imshow(
            shown, cmap="inferno", vmin=0, vmax=1, alpha=0.8, extent=extent, interpolation="nearest"
        )
        handles = []
        for (rater, mask), colour in zip(raters.items(), RATER_COLOURS, strict=False):
            on_slice = bool(np.asarray(mask[z]).any())
            for axes in (ct_axes, map_axes) if on_slice else ():
                axes.contour(
                    np.asarray(mask[z], dtype=np.float64),
                    levels=[0.5],
                    colors=[colour],
                    linewidths=1.2,
                    extent=extent,
                    origin="upper",
                )
            label = f"rater {rater}" + ("" if on_slice else " (none on this slice)")
            handles.append(Line2D([], [], color=colour, linewidth=1.5, label=label))
        ct_axes.legend(handles=handles, loc="lower left", fontsize="small", framealpha=0.6)
        ct_axes.set_title(f"NCCT, slice {z} ({CT_WINDOW_HU[0]:g}-{CT_WINDOW_HU[1]:g} HU)")
        map_axes.set_title(probability_label)
        for axes in (ct_axes, map_axes):
            axes.set_xticks([])
            axes.set_yticks([])
        figure.colorbar(image, ax=map_axes, fraction=0.046, pad=0.02)
        figure.suptitle(title)
        figure.tight_layout()
        return _png(figure)
