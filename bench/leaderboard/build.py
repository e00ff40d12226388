"""Render the leaderboard to disk, or check that what is on disk is what the results give.

Only files the renderer owns are written or removed: the README, `methods/*__*.md` and
`figures/*__*.png` next to it. Markdown is compared byte for byte. A figure's name carries a
hash of the data it plots, so the pages pin their figures' inputs; figures are checked for
presence only (PNG bytes may differ between matplotlib versions while the numbers cannot) and
rendered only when missing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.io import remove_stale_temporaries, write_bytes
from bench.leaderboard import figures
from bench.leaderboard.collect import load_all, rankings
from bench.leaderboard.markdown import (
    FIGURES_DIR,
    METHODS_DIR,
    curves_path,
    figure_path,
    page_path,
    render_method_page,
    render_readme,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rendered:
    markdown: dict[str, str]  # path relative to the README's folder -> text
    figures: dict[str, Callable[[], bytes]]  # path -> renderer (PNG is slow: render on write)


def render(results_dir: Path, out: Path) -> Rendered:
    all_results = load_all(results_dir)
    location = Path(os.path.relpath(results_dir.resolve(), out.parent.resolve())).as_posix()
    markdown = {out.name: render_readme(rankings(all_results), location)}
    pngs: dict[str, Callable[[], bytes]] = {}
    for results in all_results:
        markdown[page_path(results)] = render_method_page(results)
        raters = results.stats.roles.raters
        pngs[figure_path(results)] = lambda r=results, k=raters: figures.volume_figure(r, k)
        curves = curves_path(results)
        if curves:
            pngs[curves] = lambda r=results: figures.curves_figure(r)
    return Rendered(markdown, pngs)


def _owned(root: Path) -> set[str]:
    """Generated files already on disk (pattern-matched so that nothing else is touched)."""
    owned = {p.relative_to(root).as_posix() for p in (root / METHODS_DIR).glob("*__*.md")}
    owned |= {p.relative_to(root).as_posix() for p in (root / FIGURES_DIR).glob("*__*.png")}
    return owned


def write_leaderboard(results_dir: Path, out: Path) -> list[Path]:
    """Write README, pages and figures; remove stale generated files. Returns what changed."""
    rendered = render(results_dir, out)
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
