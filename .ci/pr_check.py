"""The submission workflow's check of a pull request, run at the repository root:

    python .ci/pr_check.py BASE HEAD

For each folder under submissions/ that the pull request changes (`git diff BASE...HEAD`):
`bench submission check`, then the conformance test on the smoke profile
(`python -m pytest tests/test_conformance.py -k [NAME]`). Then `bench leaderboard --check`,
whatever the pull request touched: a hand-edited leaderboard/README.md, or a results file
without the per-case table that re-derives it, fails with that command's one-line reason.

Every failure is also a GitHub error annotation (`::error::`). The job summary
($GITHUB_STEP_SUMMARY, when set) holds the table of checks and what a maintainer runs to
publish. Exit code 1 when anything failed, else 0.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from bench.errors import BenchError
from bench.registry import read_submission_manifest

SUBMISSIONS = Path("submissions")
TEMPLATE = "_template"
CONFORMANCE = "tests/test_conformance.py"
LEADERBOARD_CHECK = ("bench", "leaderboard", "--check")
LOG_TAIL_LINES = 40  # of a failed conformance run, in the summary


@dataclass(frozen=True)
class Outcome:
    ok: bool
    text: str  # one line: what the command said (its error line when it failed)
    log: str = ""  # the command's full output, kept for a failure's details


@dataclass(frozen=True)
class SubmissionRow:
    folder: str
    kind: str
    check: Outcome
    conformance: Outcome | None  # None: not applicable (see the text in the table)
    name: str | None = None  # the registered name, when the check passed

    @property
    def ok(self) -> bool:
        return self.check.ok and (self.conformance is None or self.conformance.ok)


def changed_paths(base: str, head: str) -> list[str]:
    """Paths the pull request adds, changes or removes (a rename is both)."""
    command = ["git", "diff", "--name-only", "--no-renames", f"{base}...{head}"]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()


def changed_submission_folders(paths: list[str]) -> list[str]:
    """`submissions/<folder>` for every changed path inside a submission folder, once each."""
    folders = {
        f"{SUBMISSIONS}/{parts[1]}"
        for parts in (path.split("/") for path in paths)
        if len(parts) >= 3 and parts[0] == str(SUBMISSIONS) and parts[1] != "__pycache__"
    }
    return sorted(folders)


def run(command: list[str]) -> tuple[int, str, str]:
    """Run a command, echo it and its output into the job log (folded), return what it said."""
    print(f"::group::{' '.join(command)}", flush=True)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    print(done.stdout + done.stderr, end="", flush=True)
    print("::endgroup::", flush=True)
    return done.returncode, done.stdout, done.stderr


def last_line(text: str) -> str:
    """The last non-empty line, with this checkout's absolute paths made relative."""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip().replace(f"{Path.cwd()}{os.sep}", "") if lines else ""


def with_log(output: str, error_line: str) -> str:
    """`output`, and the log file an error line names (`bench submission check` keeps the
    adapter's output and traceback there, on the runner, out of the contributor's reach)."""
    named = re.search(r"\(log: (\S+)\)$", error_line)
    if named and Path(named.group(1)).is_file():
        log = Path(named.group(1)).read_text(encoding="utf-8", errors="replace")
        return f"{output}\n--- {named.group(1)} ---\n{log}"
    return output


def check_folder(folder: str) -> SubmissionRow:
    path = Path(folder)
    if not path.is_dir():
        return SubmissionRow(folder, "-", Outcome(True, "removed by this pull request"), None)
    code, out, err = run(["bench", "submission", "check", folder])
    if code != 0:
        reason = last_line(err)
        check = Outcome(False, reason, with_log(out + err, reason))
        return SubmissionRow(folder, _kind(path), check, None)
    manifest = read_submission_manifest(path)
    check = Outcome(True, last_line(out).removeprefix(f"{folder}: "))
    if manifest.kind != "adapter":
        return SubmissionRow(folder, manifest.kind, check, None, manifest.name)
    # The conformance test names the template by its folder, every other method by its name.
    name = TEMPLATE if path.name == TEMPLATE else manifest.name
    command = ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", CONFORMANCE]
    code, out, err = run([*command, "-k", f"[{name}]"])
    summary = last_line(out) or last_line(err)
    if code == 5:  # pytest: no test selected
        summary = f"no conformance test is named [{name}]"
    conformance = Outcome(code == 0, summary, out + err)
    return SubmissionRow(folder, manifest.kind, check, conformance, manifest.name)


def _kind(folder: Path) -> str:
    """The manifest's kind for the table, or "?" when the manifest itself is what failed."""
    try:
        return read_submission_manifest(folder).kind
    except BenchError:
        return "?"


def check_leaderboard() -> Outcome:
    code, out, err = run(list(LEADERBOARD_CHECK))
    return Outcome(code == 0, last_line(err) if code else last_line(out), out + err)


def annotate(rows: list[SubmissionRow], leaderboard: Outcome) -> None:
    """One GitHub error annotation per failure, shown on the pull request's checks page."""
    for row in rows:
        for what, outcome in (("check", row.check), ("conformance", row.conformance)):
            if outcome is not None and not outcome.ok:
                print(f"::error title={row.folder} {what}::{outcome.text}", flush=True)
    if not leaderboard.ok:
        print(f"::error title=bench leaderboard --check::{leaderboard.text}", flush=True)


def mark(outcome: Outcome | None, not_applicable: str) -> str:
    """A table cell: the outcome's line, `|` escaped so that it stays one cell."""
    if outcome is None:
        return not_applicable
    text = outcome.text.replace("|", "\\|")
    return text if outcome.ok else f"FAILED: {text}"


def summary_markdown(rows: list[SubmissionRow], leaderboard: Outcome, paths: list[str]) -> str:
    """The job summary; `paths` are the pull request's changed paths."""
    table = tabulate(
        [
            [
                f"`{row.folder}`",
                row.kind,
                mark(row.check, ""),
                mark(row.conformance, "not applicable" if row.check.ok else "not run"),
            ]
            for row in rows
        ],
        headers=["submission", "kind", "`bench submission check`", "conformance (smoke)"],
        tablefmt="github",
    )
    parts = ["## Submission check", ""]
    parts += [table if rows else "This pull request changes no submission folder.", ""]
    parts += [f"`{' '.join(LEADERBOARD_CHECK)}`: {mark(leaderboard, '')}", ""]
    for row in rows:
        for what, outcome in (("check", row.check), ("conformance", row.conformance)):
            if outcome is not None and not outcome.ok and outcome.log:
                tail = "\n".join(outcome.log.splitlines()[-LOG_TAIL_LINES:])
                parts += [f"<details><summary>{row.folder}: {what} output</summary>", ""]
                parts += ["```", tail, "```", "</details>", ""]
    if not leaderboard.ok:
        parts += [
            "The leaderboard is generated, never edited by hand: `bench leaderboard` renders "
            "`leaderboard/` from `leaderboard/results/*.json`, and each results file must "
            "carry the per-case table its numbers are re-derived from (`bench run --publish` "
            "writes both).",
            "",
        ]
    results = [p for p in paths if p.startswith("leaderboard/results/") and Path(p).is_file()]
    passed = [row for row in rows if row.ok and row.name]
    parts += publish_instructions(passed, results if leaderboard.ok else [])
    return "\n".join(parts).rstrip() + "\n"


def publish_instructions(rows: list[SubmissionRow], results: list[str]) -> list[str]:
    """What a maintainer runs, after merging, to put each passing submission on the board;
    `results` are the checked results files the pull request itself adds or changes."""
    rows = [row for row in rows if Path(row.folder).name != TEMPLATE]
    if not rows:
        return []
    parts = ["### To publish (a maintainer, after merging)", ""]
    for row in rows:
        for path in [p for p in results if Path(p).name.startswith(f"{row.name}__")]:
            parts += [
                f"`{row.name}`: this pull request publishes `{path}`; merging it is enough.",
                "",
            ]
        if row.kind == "adapter":
            parts += [
                f"`{row.name}`: run it on every fold and open a pull request with its results "
                "file (Actions > leaderboard > Run workflow), or from a terminal:",
                "",
                "```",
                f"gh workflow run leaderboard.yml -f method={row.name} -f profile=demo",
                f"gh workflow run leaderboard.yml -f method={row.name} -f profile=paper "
                "-f runner=<GPU runner label> -f dataset=<dataset folder on it>",
                "```",
                "",
                "or on a machine of your own, then commit `leaderboard/`:",
                "",
                "```",
                f"bench run --method {row.name} --profile demo --publish",
                "```",
                "",
            ]
        else:
            parts += [
                f"`{row.name}` (predictions): score it against the dataset its masks are for, "
                "then commit `leaderboard/`:",
                "",
                "```",
                f"bench score --submission {row.folder} --dataset DIR --publish",
                "```",
                "",
            ]
    return parts


def write_summary(markdown: str) -> None:
    """Append to the job summary (GitHub gives each step its own file); print it otherwise."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        print(markdown)
        return
    with open(target, "a", encoding="utf-8") as summary:
        summary.write(markdown)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the pull request's base commit")
    parser.add_argument("head", help="the pull request's head commit")
    args = parser.parse_args(argv)
    try:
        paths = changed_paths(args.base, args.head)
    except subprocess.CalledProcessError as error:
        reason = (error.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"error: git diff {args.base}...{args.head} failed: {reason}", file=sys.stderr)
        return 2
    folders = changed_submission_folders(paths)
    rows = [check_folder(folder) for folder in folders]
    leaderboard = check_leaderboard()
    annotate(rows, leaderboard)
    write_summary(summary_markdown(rows, leaderboard, paths))
    return 0 if leaderboard.ok and all(row.ok for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
