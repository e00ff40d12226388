"""The import summary: what a user checks before trusting an imported dataset.

Built from what the import already measured (lesion volumes, geometry), so printing it reads
no file again. `format_summary` returns text; the CLI prints it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from bench.data.importers.common import Skipped
from bench.data.importers.place import PlacedCase


@dataclass
class ImportSummary:
    name: str
    layout: str
    n_cases: int
    n_patients: int
    raters: list[str]
    reference_rater: str
    volumes_ml: dict[str, list[float]]
    spacing_xyz_mm: list[tuple[float, ...]]
    shapes_zyx: list[tuple[int, ...]]
    files: dict[str, int]  # "linked" / "copied" / "converted" -> count
    skipped: list[Skipped] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    note: str | None = None

    @classmethod
    def of(
        cls,
        name: str,
        layout: str,
        placed: list[PlacedCase],
        patients: dict[str, str],
        raters: list[str],
        reference_rater: str,
        skipped: list[Skipped],
        notices: list[str] | None = None,
        note: str | None = None,
    ) -> ImportSummary:
        return cls(
            name=name,
            layout=layout,
            n_cases=len(placed),
            n_patients=len(set(patients.values())),
            raters=list(raters),
            reference_rater=reference_rater,
            volumes_ml={r: [p.lesion_ml[r] for p in placed] for r in raters},
            spacing_xyz_mm=[p.geometry.spacing_xyz for p in placed],
            shapes_zyx=[p.geometry.shape_zyx for p in placed],
            files=dict(Counter(how for p in placed for how in p.how.values())),
            skipped=list(skipped),
            notices=list(notices or []),
            note=note,
        )

    def empty_count(self, rater: str) -> int:
        return sum(1 for v in self.volumes_ml[rater] if v <= 0)


def format_summary(summary: ImportSummary) -> str:
    from tabulate import tabulate

    files = ", ".join(f"{n} {how}" for how, n in sorted(summary.files.items()))
    overview = [
        ("dataset", summary.name),
        ("layout", summary.layout),
        ("cases", summary.n_cases),
        ("patients", summary.n_patients),
        ("raters", f"{', '.join(summary.raters)} (reference {summary.reference_rater})"),
        ("files", files),
        ("skipped cases", len(summary.skipped)),
        ("notices", len(summary.notices)),
    ]
    parts = [tabulate(overview, tablefmt="plain")]

    rows = []
    for rater in summary.raters:
        volumes = np.asarray(summary.volumes_ml[rater], dtype=float)
        q1, median, q3 = np.percentile(volumes, [25, 50, 75])
        name = f"{rater} (reference)" if rater == summary.reference_rater else rater
        iqr = f"{q1:.2f} - {q3:.2f}"
        rows.append((name, len(volumes), median, iqr, summary.empty_count(rater)))
    parts.append(
        tabulate(
            rows,
            headers=("rater", "cases", "median lesion [ml]", "IQR [ml]", "empty masks"),
            floatfmt=".2f",
        )
    )

    spacing = np.asarray(summary.spacing_xyz_mm, dtype=float)
    shapes = np.asarray(summary.shapes_zyx, dtype=int)
    geometry_rows = [
        (
            axis,
            spacing[:, i].min(),
            spacing[:, i].max(),
            shapes[:, 2 - i].min(),
            shapes[:, 2 - i].max(),
        )
        for i, axis in enumerate("xyz")
    ]
    parts.append(
        tabulate(
            geometry_rows,
            headers=("axis", "spacing min [mm]", "spacing max [mm]", "voxels min", "voxels max"),
            floatfmt=".3g",
        )
    )
    if summary.skipped:
        parts.append(
            "skipped (not imported):\n"
            + tabulate(
                [(s.case, s.reason, s.file or "") for s in summary.skipped],
                headers=("case", "reason", "file"),
            )
        )
    if summary.notices:
        parts.append("notices:\n" + "\n".join(f"- {notice}" for notice in summary.notices))
    if len(summary.raters) < 2:
        parts.append(
            f"Only one rater ({summary.raters[0]}): Table 2 (agreement with the reference) "
            "works; Table 3 (non-inferiority) needs at least two raters."
        )
    if summary.note:
        parts.append(f"Note: {summary.note}")
    return "\n\n".join(parts)
