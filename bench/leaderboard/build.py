"""Render the leaderboard to disk, or check that what is on disk is what the results give.

Only files the renderer owns are written or removed: the README, `methods/*__*.md` and
`figures/*__*.png` next to it. Markdown is compared byte for byte. A figure's name carries a
hash of the data it plots, so the pages pin their figures' inputs; figures are checked for
presence only (PNG bytes may differ between matplotlib versions while the numbers cannot) and
rendered only when missing.

Figure 4 panels (`bench show`) need the run's predictions and the dataset, which a results file
does not carry: `write_leaderboard(..., predictions_root=, dataset=)` draws them where
`<predictions_root>/<method>/<profile>/` holds the very masks the results file hashes; a page
embeds the panels whose files exist, and says that there are none otherwise.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.data.dataset import Dataset
from bench.errors import BenchError
from bench.io import remove_stale_temporaries, sha256_file, write_bytes
from bench.leaderboard import figures
from bench.leaderboard.collect import RANKING_METRIC, load_all, rankings
from bench.leaderboard.markdown import (
    FIGURES_DIR,
    METHODS_DIR,
    calibration_path,
    case_panel_path,
    curves_path,
    figure_path,
    forest_inputs,
    forest_path,
    page_path,
    panel_cases,
    render_method_page,
    render_readme,
)
from bench.predictions import output_paths
from bench.results import Results

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rendered:
    markdown: dict[str, str]  # path relative to the README's folder -> text
    figures: dict[str, Callable[[], bytes]]  # path -> renderer (PNG is slow: render on write)


def render(
    results_dir: Path,
    out: Path,
    predictions_root: Path | None = None,
    dataset: Dataset | None = None,
) -> Rendered:
    all_results = load_all(results_dir)
    location = Path(os.path.relpath(results_dir.resolve(), out.parent.resolve())).as_posix()
    groups = rankings(all_results)
    markdown = {out.name: render_readme(groups, location)}
    pngs: dict[str, Callable[[], bytes]] = {}
    for ranking in groups:
        rows, bands, level = forest_inputs(ranking)
        pngs[forest_path(ranking)] = lambda r=rows, b=bands, ref=ranking.reference, lv=level: (
            figures.forest_figure(r, b, RANKING_METRIC, ref, lv)
        )
    for results in all_results:
        panels = _case_panels(results, out.parent, predictions_root, dataset)
        markdown[page_path(results)] = render_method_page(results, tuple(panels))
        pngs.update({case_panel_path(results, case): draw for case, draw in panels.items()})
        raters = results.stats.roles.raters
        pngs[figure_path(results)] = lambda r=results, k=raters: figures.volume_figure(r, k)
        for path, draw in (
            (curves_path(results), figures.curves_figure),
            (calibration_path(results), figures.calibration_figure),
        ):
            if path:
                pngs[path] = lambda r=results, d=draw: d(r)
    return Rendered(markdown, pngs)


def _case_panels(
    results: Results, root: Path, predictions_root: Path | None, dataset: Dataset | None
) -> dict[str, Callable[[], bytes]]:
    """Per Figure 4 case whose panel exists or can be drawn from the run's own predictions,
    case id -> renderer (its file: `case_panel_path`)."""
    from bench.leaderboard.case_figure import case_figure

    out: dict[str, Callable[[], bytes]] = {}
    for case in panel_cases(results):
        path = case_panel_path(results, case)
        folder = _run_predictions(results, case, predictions_root, dataset)
        if folder is not None and dataset is not None:
            title = f"{results.method.name}, case {case}"
            out[case] = lambda d=dataset, f=folder, c=case, t=title: case_figure(d, f, c, t)
        elif (root / path).is_file():
            out[case] = _already_drawn(root / path)
    return out


def _already_drawn(path: Path) -> Callable[[], bytes]:
    def draw() -> bytes:  # never called: an existing figure is not drawn again
        raise BenchError(f"{path}: cannot be redrawn without the run's predictions")

    return draw


def _run_predictions(
    results: Results, case: str, predictions_root: Path | None, dataset: Dataset | None
) -> Path | None:
    """`<predictions_root>/<method>/<profile>` when it holds this run's mask of `case` (the
    hash the results file records) and `dataset` is the results' dataset; None otherwise."""
    if predictions_root is None or dataset is None:
        return None
    if dataset.content_sha256 != results.dataset.content_sha256:
        log.info("%s: dataset %s is not the results' dataset", results.stem, dataset.root)
        return None
    folder = predictions_root / results.method.name / results.profile
    mask = output_paths(folder, case).mask
    if not mask.is_file() or sha256_file(mask) != results.prediction_sha256.get(case):
        log.info("%s: %s is not the run's prediction of %s", results.stem, mask, case)
        return None
    return folder


def _owned(root: Path) -> set[str]:
    """Generated files already on disk (pattern-matched so that nothing else is touched)."""
    owned = {p.relative_to(root).as_posix() for p in (root / METHODS_DIR).glob("*__*.md")}
    owned |= {p.relative_to(root).as_posix() for p in (root / FIGURES_DIR).glob("*__*.png")}
    return owned


def write_leaderboard(
    results_dir: Path,
    out: Path,
    predictions_root: Path | None = None,
    dataset: Dataset | None = None,
) -> list[Path]:
    """Write README, pages and figures; remove stale generated files. Returns what changed."""
    rendered = render(results_dir, out, predictions_root, dataset)
    root = out.parent
    remove_stale_temporaries(root, out.name)  # a killed run's; pages and figures: see _owned
    changed = []
    outputs: dict[str, Callable[[], bytes]] = {
        path: (lambda text=text: text.encode("utf-8")) for path, text in rendered.markdown.items()
    }
    outputs.update(rendered.figures)
    for relative, make in outputs.items():
        path = root / relative
        if relative in rendered.figures and path.is_file():
            continue  # its name is the hash of what it plots: already current
        data = make()
        if not path.is_file() or path.read_bytes() != data:
            write_bytes(data, path)
            changed.append(path)
    for stale in sorted(_owned(root) - set(outputs)):
        (root / stale).unlink()
        changed.append(root / stale)
        log.info("removed stale %s", root / stale)
    return changed


def check_leaderboard(results_dir: Path, out: Path) -> list[str]:
    """Every difference between the files on disk and what the results give, one line each."""
    rendered = render(results_dir, out)
    root = out.parent
    problems = []
    for relative, text in rendered.markdown.items():
        path = root / relative
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif path.read_bytes() != text.encode("utf-8"):
            problems.append(f"{path} differs from what {results_dir} gives")
    for relative in rendered.figures:
        if not (root / relative).is_file():
            problems.append(f"{root / relative} is missing")
    expected = set(rendered.markdown) | set(rendered.figures)
    problems += [f"{root / stale} has no results file" for stale in sorted(_owned(root) - expected)]
    return problems
