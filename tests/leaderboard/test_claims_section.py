"""The leaderboard's "study's claims" section: tested where both variants are published, one
"not tested" line naming the missing results file otherwise, per dataset and profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.leaderboard import check_leaderboard, write_leaderboard
from bench.results import build_results, load_results, save_results
from bench.stats import RaterRoles, StatsConfig
from tests.stats.synthetic import eroded_share, identical, make_per_case, run_metadata

N = 30
ROLES = RaterRoles("A", ("B", "C"))
HEADING = "### The study's claims on this dataset"
NO_FILE = "no results file for this dataset and profile"


def _publish(folder: Path, method: str, transform, profile: str = "demo") -> None:
    table = make_per_case(N, method=method, method_from_a=transform, seed=5)
    results = build_results(
        table, method, ROLES, run_metadata(N, profile), StatsConfig(resamples=50)
    )
    save_results(results, folder / "results" / f"{results.stem}.json")


def _claim_rows(section: str) -> dict[tuple[str, str], list[str]]:
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.split("|")[1:-1]]
        if line.startswith("| ") and cells[0] != "Claim":
            rows[(cells[0], cells[2])] = cells
    return rows


def _defined_for_both(board: Path, metric: str) -> int:
    """Cases where nnunet3d_mirrored and nnunet3d both have `metric` against rater A."""
    defined = []
    for method in ("nnunet3d_mirrored", "nnunet3d"):
        table = load_results(board / "results" / f"{method}__phantom__demo.json").per_case
        rows = table.to_frame().query("reference == 'A' and test == @method")
        defined.append(set(rows.loc[rows[metric].notna(), "case"]))
    return len(defined[0] & defined[1])


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("claims")
    # The copy of rater A beats a 35% shrink; the 35% shrink loses to a 30% shrink.
    _publish(folder, "nnunet3d_mirrored", identical)
    _publish(folder, "nnunet3d", eroded_share(0.35))
    _publish(folder, "nnunet2d", eroded_share(0.30))
    _publish(folder, "nnunet3d_mirrored_tuned", identical)
    _publish(folder, "nnunet3d", identical, profile="smoke")
    write_leaderboard(folder / "results", folder / "README.md")
    return folder


def test_claims_are_tested_where_both_variants_are_published(board: Path) -> None:
    readme = (board / "README.md").read_text(encoding="utf-8")
    demo = readme.split("## phantom, profile `demo`")[1].split("## phantom, profile")[0]
    assert demo.count(HEADING) == 1
    rows = _claim_rows(demo.split(HEADING)[1])
    assert rows[("mirrored vs not", "SDT5")][-1] == "holds"
    assert rows[("mirrored vs not", "Dice")][-1] == "holds"
    assert rows[("mirrored vs not", "SDT5")][3] == f"{_defined_for_both(board, 'SDT5')} of {N}"
    assert rows[("3D vs 2D", "SDT5")][-1] == "reversed"
    assert rows[("3D vs 2D", "Dice")][4].startswith("-")
    assert rows[("mirrored vs not, tuned", "-")][-1] == (
        f"not tested: `nnunet3d_tuned` has {NO_FILE}"
    )
    assert rows[("tuned vs not", "-")][-1] == f"not tested: `nnunet3d_tuned` has {NO_FILE}"
    # Two copies of rater A: every d is 0, p = 1.
    assert rows[("tuned vs not, mirrored", "SDT5")][-2:] == ["1.000 (1.000)", "not shown"]
    assert "Holm over every test of this section" in demo


def test_each_profile_has_its_own_claims(board: Path) -> None:
    readme = (board / "README.md").read_text(encoding="utf-8")
    smoke = readme.split("## phantom, profile `smoke`")[1]
    rows = _claim_rows(smoke.split(HEADING)[1])
    assert rows[("mirrored vs not", "-")][-1] == f"not tested: `nnunet3d_mirrored` has {NO_FILE}"
    assert rows[("3D vs 2D", "-")][-1] == f"not tested: `nnunet2d` has {NO_FILE}"
    assert rows[("tuned vs not", "-")][-1] == f"not tested: `nnunet3d_tuned` has {NO_FILE}"
    assert check_leaderboard(board / "results", board / "README.md") == []


def test_a_board_without_study_variants_lists_every_claim_as_not_tested(tmp_path: Path) -> None:
    _publish(tmp_path, "other", identical)
    write_leaderboard(tmp_path / "results", tmp_path / "README.md")
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    rows = _claim_rows(readme.split(HEADING)[1])
    assert len(rows) == 5
    assert rows[("3D vs 2D", "-")][-1] == f"not tested: `nnunet3d`, `nnunet2d` have {NO_FILE}"
