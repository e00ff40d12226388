"""The leaderboard workflow's run-and-publish step, run at the repository root:

    python .ci/publish_run.py --method NAME --profile PROFILE [--dataset DIR]

runs `bench run --method NAME --profile PROFILE [--dataset DIR] --publish` (an empty DIR: the
built-in phantom), then names the results file it published, the one file under
leaderboard/results/ that git sees as new or changed, in the step output `results`
($GITHUB_OUTPUT) for the artifact and pull-request steps, and lists what changed in the job
summary ($GITHUB_STEP_SUMMARY). An output `results` left empty means the run published the
bytes already committed: nothing to upload, no pull request. Exit code: bench's when it
failed, 2 when more than one results file changed, else 0.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

RESULTS = "leaderboard/results"


def bench_command(method: str, profile: str, dataset: str) -> list[str]:
    command = ["bench", "run", "--method", method, "--profile", profile]
    if dataset:
        command += ["--dataset", dataset]
    return [*command, "--publish"]


def changed(folder: str) -> list[str]:
    """Files under `folder` that are new or differ from the checked-out commit."""
    status = ["git", "status", "--porcelain", "--untracked-files=all", "--", folder]
    lines = subprocess.run(status, check=True, capture_output=True, text=True).stdout
    return sorted(line[3:] for line in lines.splitlines())


def append(variable: str, text: str) -> None:
    """Append to the file GitHub names in `variable`; print the text when it is unset."""
    target = os.environ.get(variable)
    if not target:
        print(text, end="")
        return
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", required=True)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--dataset", default="", help="dataset folder (empty: the phantom)")
    args = parser.parse_args(argv)
    command = bench_command(args.method, args.profile, args.dataset)
    print(" ".join(command), flush=True)
    code = subprocess.run(command, check=False).returncode
    if code != 0:
        return code
    results = [path for path in changed(RESULTS) if path.endswith(".json")]
    if len(results) > 1:
        print(f"error: the run changed {len(results)} results files: {', '.join(results)}")
        return 2
    published = results[0] if results else ""
    append("GITHUB_OUTPUT", f"results={published}\n")
    lines = [f"## `{' '.join(command)}`", ""]
    if published:
        lines += [f"Published `{published}`. Changed under `leaderboard/`:", ""]
        lines += [f"- `{path}`" for path in changed("leaderboard")]
        lines += ["", "The pull request opened by this job holds them; merge it to publish."]
    else:
        lines += ["The results file is byte for byte the committed one: nothing to publish."]
    append("GITHUB_STEP_SUMMARY", "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
