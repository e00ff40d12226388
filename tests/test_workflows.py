"""The GitHub Actions workflows (.github/workflows) and the pre-commit config.

Every workflow passes actionlint (with shellcheck on its `run:` scripts). The `run:` steps of
each job are read from the workflow files and run here, in order, as the runner runs them
(`bash -eo pipefail`), in a copy of this checkout made into a git repository, on the smoke
profile: a contributor's pull request adding a submission, pull requests that edit the
leaderboard by hand or drop a results file's per-case table, a push to main that changes the
results, and the run-and-publish job. The test and the workflows cannot drift: a step added to
a workflow runs here too, and `test_each_job_runs_the_expected_steps` lists them all.
Two steps are not run: the install step (`.ci/install`, i.e. `make install`), since this
environment is installed already (`test_install_step_*` dry-runs it with `make -n`), and ci.yml's
`make test`, which is the suite this test belongs to.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (pip install -e '.[dev]')")

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
VENV_BIN = Path(sys.executable).parent  # bench, pytest, actionlint: the running environment's
INSTALL = ".ci/install"
CHECKOUT, SETUP_PYTHON = "uses: actions/checkout", "uses: actions/setup-python"
PREAMBLE = [CHECKOUT, SETUP_PYTHON, INSTALL]
PR_CHECK = 'python .ci/pr_check.py "$BASE_SHA" "$HEAD_SHA"'
PUBLISH_RUN = (
    'python .ci/publish_run.py --method "$METHOD" --profile "$PROFILE" --dataset "$DATASET"'
)
EXPECTED_STEPS = {
    ("ci.yml", "test"): [*PREAMBLE, "make test"],
    ("submission.yml", "check"): [*PREAMBLE, PR_CHECK],
    ("leaderboard.yml", "regenerate"): [*PREAMBLE, "bench leaderboard", ".ci/commit-leaderboard"],
    ("leaderboard.yml", "run-and-publish"): [
        *PREAMBLE,
        PUBLISH_RUN,
        "uses: actions/upload-artifact",
        "uses: peter-evans/create-pull-request",
    ],
}
BOT = "github-actions[bot]"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def tool(name: str) -> str | None:
    """`name` from the running environment's bin folder, else from PATH."""
    return shutil.which(name, path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def load(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads `on` as true
    return workflow


def step_label(step: dict) -> str:
    return f"uses: {step['uses'].split('@')[0]}" if "uses" in step else step["run"].strip()


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def commit(repo: Path, message: str) -> str:
    """Commit everything as a contributor would; the new commit's sha."""
    git(repo, "add", "--all")
    who = ["-c", "user.name=Contributor", "-c", "user.email=contributor@example.org"]
    git(repo, *who, "-c", "commit.gpgsign=false", "commit", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD")


# --- static checks -------------------------------------------------------------------------


def test_each_job_runs_the_expected_steps():
    found = {
        (path.name, job): [step_label(step) for step in spec["steps"]]
        for path in sorted(WORKFLOWS.glob("*.yml"))
        for job, spec in load(path.name)["jobs"].items()
    }
    assert found == EXPECTED_STEPS
    for (name, job), _ in EXPECTED_STEPS.items():
        for step in load(name)["jobs"][job]["steps"]:
            if "run" in step:  # inputs reach scripts through env, never pasted into the script
                assert not EXPRESSION.search(step["run"]), step["run"]
                assert "if" not in step, "this test runs every run: step unconditionally"


def test_workflows_pass_actionlint():
    actionlint = tool("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (pip install -e '.[dev]')")
    files = sorted(str(path) for path in WORKFLOWS.glob("*.yml"))
    command = [actionlint, "-shellcheck=", "-pyflakes=", *files]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflow_and_ci_scripts_pass_shellcheck():
    """The `run:` lines, through actionlint, and the shell scripts they call."""
    actionlint, shellcheck = tool("actionlint"), tool("shellcheck")
    if actionlint is None or shellcheck is None:
        pytest.skip("actionlint or shellcheck is not installed (pip install -e '.[dev]')")
    files = sorted(str(path) for path in WORKFLOWS.glob("*.yml"))
    command = [actionlint, f"-shellcheck={shellcheck}", "-pyflakes=", *files]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    scripts = [
        p for p in (ROOT / ".ci").iterdir() if p.read_bytes().startswith(b"#!/usr/bin/env bash")
    ]
    assert {".ci/install", ".ci/commit-leaderboard"} <= {f".ci/{p.name}" for p in scripts}
    done = subprocess.run([shellcheck, *map(str, scripts)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_refuses_a_broken_workflow(tmp_path):
    """The check above can fail: an unknown input of a known action and an undefined step
    output are both errors."""
    actionlint = tool("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (pip install -e '.[dev]')")
    text = (WORKFLOWS / "leaderboard.yml").read_text(encoding="utf-8")
    broken = text.replace("if-no-files-found: error", "if-no-file-found: error")
    broken = broken.replace("steps.run.outputs.results", "steps.missing.outputs.results")
    assert broken != text
    (tmp_path / "broken.yml").write_text(broken, encoding="utf-8")
    command = [actionlint, "-shellcheck=", "-pyflakes=", str(tmp_path / "broken.yml")]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "if-no-file-found" in done.stdout and "missing" in done.stdout


def test_pre_commit_config_has_ruff_and_the_leaderboard_check():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff-check", "ruff-format", "bench-leaderboard-check"} <= set(hooks)
    assert hooks["bench-leaderboard-check"]["entry"] == "bench leaderboard --check"
    pre_commit = tool("pre-commit")
    if pre_commit is None:
        pytest.skip("pre-commit is not installed (pip install -e '.[dev]')")
    command = [pre_commit, "validate-config", str(ROOT / ".pre-commit-config.yaml")]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_publish_instructions_name_the_dispatch_inputs():
    """The summary's `gh workflow run leaderboard.yml -f ...` uses inputs that exist."""
    source = (ROOT / ".ci" / "pr_check.py").read_text(encoding="utf-8")
    used = set(re.findall(r"-f (\w+)=", source))
    inputs = load("leaderboard.yml")["on"]["workflow_dispatch"]["inputs"]
    assert used and used <= set(inputs)
    assert "paper" in inputs["profile"]["options"]


@functools.cache
def _pr_check():
    """.ci/pr_check.py as a module (it is a script, not part of a package)."""
    spec = importlib.util.spec_from_file_location("pr_check", ROOT / ".ci" / "pr_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_pr_check_finds_each_changed_submission_folder_once():
    paths = [
        "submissions/b/adapter.py",
        "submissions/a/submission.toml",
        "submissions/b/weights/fold_0.pt",
        "submissions/__init__.py",  # the package, not a submission
        "leaderboard/README.md",
        "tests/submissions/test_check.py",
    ]
    assert _pr_check().changed_submission_folders(paths) == ["submissions/a", "submissions/b"]


def test_pr_check_folds_the_log_a_failed_check_names(tmp_path):
    pr_check = _pr_check()
    log = tmp_path / "bench-check-x.log"
    log.write_text("Traceback (most recent call last):\nZeroDivisionError\n", encoding="utf-8")
    line = f"error: submissions/x: fit failed: ZeroDivisionError: division by zero (log: {log})"
    assert pr_check.with_log("output", line).endswith(f"--- {log} ---\n{log.read_text()}")
    assert pr_check.with_log("output", line.replace(str(log), str(tmp_path / "gone"))) == "output"
    cell = pr_check.mark(pr_check.Outcome(False, "a | b"), "")
    assert cell == "FAILED: a \\| b"


def test_pr_check_says_when_the_pull_request_already_publishes(tmp_path, monkeypatch):
    pr_check = _pr_check()
    monkeypatch.chdir(tmp_path)
    published = Path("leaderboard/results/ada__phantom__demo.json")
    published.parent.mkdir(parents=True)
    published.write_text("{}", encoding="utf-8")
    ok = pr_check.Outcome(True, "ok")
    row = pr_check.SubmissionRow("submissions/ada", "adapter", ok, ok, "ada")
    other = pr_check.SubmissionRow("submissions/bob", "predictions", ok, None, "bob")
    lines = pr_check.publish_instructions([row, other], [str(published)])
    note = f"`ada`: this pull request publishes `{published}`; merging it is enough."
    assert lines.count(note) == 1 and "bench run --method ada --profile demo --publish" in lines
    assert "bench score --submission submissions/bob --dataset DIR --publish" in lines
    assert not [line for line in lines if "bob" in line and "publishes" in line]


def test_pr_check_refuses_an_unknown_base_in_one_line(tmp_path, monkeypatch, capsys):
    git(tmp_path, "init", "--quiet")
    monkeypatch.chdir(tmp_path)
    assert _pr_check().main(["no-such-commit", "HEAD"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: git diff no-such-commit...HEAD failed: ") and err.count("\n") == 1


@pytest.mark.parametrize("writes", [0, 2])
def test_publish_run_without_exactly_one_new_results_file(writes, tmp_path):
    """A `bench` that publishes nothing new leaves the output empty (no artifact, no pull
    request); one that changes two results files is refused. The `bench` here is a stand-in
    that writes `writes` results files; the real one runs in the dispatch test below."""
    git(tmp_path, "init", "--quiet")
    fake = tmp_path / "bin" / "bench"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\nmkdir -p leaderboard/results\n"
        + "".join(f"echo {{}} > leaderboard/results/m{i}__d__smoke.json\n" for i in range(writes)),
        encoding="utf-8",
    )
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"}
    env |= {"GITHUB_OUTPUT": str(tmp_path / "out"), "GITHUB_STEP_SUMMARY": str(tmp_path / "sum")}
    command = [sys.executable, str(ROOT / ".ci" / "publish_run.py"), "--method", "m"]
    done = subprocess.run(
        [*command, "--profile", "smoke", "--dataset", ""],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.stdout.startswith("bench run --method m --profile smoke --publish\n")
    if writes == 0:
        assert done.returncode == 0 and (tmp_path / "out").read_text() == "results=\n"
        assert "nothing to publish" in (tmp_path / "sum").read_text()
    else:
        assert done.returncode == 2 and "changed 2 results files" in done.stdout
        assert not (tmp_path / "out").exists()


# --- the steps, run on a copy of this checkout ---------------------------------------------


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A git repository whose one commit holds this checkout's files as they are now
    (uncommitted changes included: the scripts under test are the working tree's)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    try:
        listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    except subprocess.CalledProcessError:
        pytest.skip(f"{ROOT} is not a git checkout")
    # numba's compiled evaluator kernels too: their cache is valid for a source file of the
    # same modification time, which copy2 keeps; compiling them anew takes about a minute.
    kernels = [p.relative_to(ROOT) for p in ROOT.glob("bench/**/__pycache__/*.nb[ic]")]
    work = tmp_path_factory.mktemp("checkout") / "repo"
    for name in [*filter(None, listed.split("\0")), *map(str, kernels)]:
        if (ROOT / name).is_file():  # listed but deleted in the working tree: not copied
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, work / name)
    git(work, "init", "--quiet", "--initial-branch=main")
    commit(work, "base")
    return work


def clone(checkout: Path, target: Path) -> Path:
    """A copy of the repository, its files' modification times kept (see `checkout`)."""
    shutil.copytree(checkout, target, symlinks=True)
    return target


def runner_env(repo: Path, tmp_path: Path) -> dict[str, str]:
    """The environment a step sees after the install step: .venv/bin on PATH (here: this
    environment's), the checkout importable, and GitHub's files for outputs and the summary."""
    if tool("bench") is None:
        pytest.skip("the bench command is not installed (pip install -e .)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_"))}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(repo)  # what `pip install -e .` in that checkout gives
    env["GITHUB_STEP_SUMMARY"] = str(tmp_path / "summary.md")
    env["GITHUB_OUTPUT"] = str(tmp_path / "output.txt")
    env["PYTEST_ADDOPTS"] = f"--basetemp={tmp_path / 'inner-pytest'}"  # not our tmp folders
    return env


def run_job(
    name: str, job: str, repo: Path, expressions: dict[str, str], env: dict[str, str]
) -> list[subprocess.CompletedProcess]:
    """Run the job's `run:` steps in order as the runner does, the install step excepted;
    stop after the first that fails. `expressions` gives each `${{ ... }}` its value."""

    def substitute(value: object) -> str:
        return EXPRESSION.sub(lambda match: expressions[match.group(1)], str(value))

    done = []
    for step in load(name)["jobs"][job]["steps"]:
        if "run" not in step or step["run"].strip() == INSTALL:
            continue
        step_env = {key: substitute(value) for key, value in step.get("env", {}).items()}
        bash = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]]
        result = subprocess.run(
            bash, cwd=repo, env={**env, **step_env}, capture_output=True, text=True, check=False
        )
        done.append(result)
        if result.returncode:
            break
    return done


def add_submission(repo: Path, env: dict[str, str], name: str) -> None:
    """`bench submission new NAME`, with the template's placeholders filled in."""
    subprocess.run(["bench", "submission", "new", name], cwd=repo, env=env, check=True)
    manifest = repo / "submissions" / name / "submission.toml"
    text = manifest.read_text(encoding="utf-8")
    for old, new in (
        ('["Your Name"]', '["Ada Contributor"]'),
        ("you@example.org", "ada@example.org"),
        ("one line: what the method does", "a per-voxel logistic model (workflow test)"),
    ):
        text = text.replace(old, new)
    manifest.write_text(text, encoding="utf-8")


def pr_expressions(base: str, head: str) -> dict[str, str]:
    return {
        "github.event.pull_request.base.sha": base,
        "github.event.pull_request.head.sha": head,
        "vars.TORCH_SPEC": "",
    }


@pytest.mark.slow
def test_submission_workflow_passes_a_new_submission_and_says_how_to_publish(checkout, tmp_path):
    repo = clone(checkout, tmp_path / "pr")
    env = runner_env(repo, tmp_path)
    base = git(repo, "rev-parse", "HEAD")
    add_submission(repo, env, "ada_logistic")
    head = commit(repo, "Add ada_logistic")

    steps = run_job("submission.yml", "check", repo, pr_expressions(base, head), env)
    assert [step.returncode for step in steps] == [0], steps[-1].stdout + steps[-1].stderr
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
    (row,) = [line for line in summary.splitlines() if "`submissions/ada_logistic`" in line]
    assert "| adapter | ok (adapter submission 'ada_logistic' in " in row
    assert re.search(r"\| 2 passed, \d+ deselected", row)  # the constructor and smoke runs
    assert "`bench leaderboard --check`: leaderboard/README.md is up to date" in summary
    assert "bench run --method ada_logistic --profile demo --publish" in summary
    assert "gh workflow run leaderboard.yml -f method=ada_logistic -f profile=demo" in summary
    assert "::error" not in steps[0].stdout


def test_submission_workflow_fails_a_refused_submission_and_lists_a_removed_one(checkout, tmp_path):
    """One row per changed folder: a copy of the template with its placeholders left in fails
    with the check's one line (no conformance run), a removed folder is only listed."""
    repo = clone(checkout, tmp_path / "pr")
    env = runner_env(repo, tmp_path)
    base = git(repo, "rev-parse", "HEAD")
    subprocess.run(["bench", "submission", "new", "unfilled"], cwd=repo, env=env, check=True)
    git(repo, "rm", "-r", "--quiet", "submissions/monai_segresnet")
    head = commit(repo, "Add unfilled, remove monai_segresnet")

    steps = run_job("submission.yml", "check", repo, pr_expressions(base, head), env)
    assert [step.returncode for step in steps] == [1]
    reason = (
        "error: submissions/unfilled/submission.toml: still the template's placeholder: "
        "authors, contact, description (fill them in)"
    )
    assert f"::error title=submissions/unfilled check::{reason}\n" in steps[0].stdout
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
    rows = [line for line in summary.splitlines() if line.startswith("| `submissions/")]
    assert len(rows) == 2
    assert re.search(r"monai_segresnet` \| - +\| removed by this pull request", rows[0])
    assert re.search(rf"unfilled` +\| adapter \| FAILED: {re.escape(reason)} +\| not run", rows[1])
    assert "`bench leaderboard --check`: leaderboard/README.md is up to date" in summary
    assert "To publish" not in summary


@pytest.mark.slow
@pytest.mark.parametrize("change", ["hand-edited README", "results without per-case table"])
def test_submission_workflow_fails_a_hand_made_leaderboard(change, checkout, tmp_path):
    repo = clone(checkout, tmp_path / "pr")
    env = runner_env(repo, tmp_path)
    base = git(repo, "rev-parse", "HEAD")
    results = sorted((repo / "leaderboard" / "results").glob("*.json"))[0]
    if change == "hand-edited README":
        with (repo / "leaderboard" / "README.md").open("a", encoding="utf-8") as readme:
            readme.write("| 1 | my_method | 0.99 | (typed by hand) |\n")
        expected = "leaderboard/README.md differs from what leaderboard/results gives"
    else:
        data = json.loads(results.read_text(encoding="utf-8"))
        del data["per_case"]
        results.write_text(json.dumps(data, indent=1), encoding="utf-8")
        expected = f"leaderboard/results/{results.name}"
    head = commit(repo, change)

    steps = run_job("submission.yml", "check", repo, pr_expressions(base, head), env)
    assert [step.returncode for step in steps] == [1]
    (annotation,) = [line for line in steps[0].stdout.splitlines() if "::error" in line]
    prefix = "::error title=bench leaderboard --check::"
    assert annotation.startswith(prefix)
    reason = annotation.removeprefix(prefix)
    assert reason.startswith("error: ") and expected in reason
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
    assert f"`bench leaderboard --check`: FAILED: {reason}" in summary
    assert "This pull request changes no submission folder." in summary
    if change != "hand-edited README":
        return
    # pre-commit's hook refuses the same commit with the same line (the local hook alone:
    # ruff's hooks would be fetched from their repository).
    pre_commit = tool("pre-commit")
    if pre_commit is None:
        pytest.skip("pre-commit is not installed (pip install -e '.[dev]')")
    config = yaml.safe_load((repo / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    local = tmp_path / "local-hooks.yaml"
    local.write_text(
        yaml.safe_dump({"repos": [r for r in config["repos"] if r["repo"] == "local"]})
    )
    hook = [pre_commit, "run", "--config", str(local), "--from-ref", base, "--to-ref", head]
    env["PRE_COMMIT_HOME"] = str(tmp_path / "pre-commit-home")
    hooked = subprocess.run(hook, cwd=repo, env=env, capture_output=True, text=True)
    assert hooked.returncode == 1 and f"\n{reason}\n" in hooked.stdout, hooked.stdout


@pytest.mark.slow
def test_leaderboard_push_job_commits_the_regenerated_markdown_only_if_changed(checkout, tmp_path):
    repo = clone(checkout, tmp_path / "main")
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(repo), str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "fetch", "--quiet", "origin")
    git(repo, "branch", "--quiet", "--set-upstream-to=origin/main")
    env = runner_env(repo, tmp_path)
    # A push to main that removes a results file but leaves its row and pages behind.
    dropped = sorted((repo / "leaderboard" / "results").glob("*.json"))[-1]
    method = dropped.name.split("__")[0]
    git(repo, "rm", "--quiet", str(dropped.relative_to(repo)))
    pushed = commit(repo, f"Withdraw {method}")
    git(repo, "push", "--quiet")

    steps = run_job("leaderboard.yml", "regenerate", repo, {}, env)
    assert [step.returncode for step in steps] == [0, 0], steps[-1].stdout + steps[-1].stderr
    head = git(remote, "log", "-1", "--format=%H %an %P", "main").split()
    assert head[0] != pushed and head[1:] == [BOT, pushed]  # one bot commit on top
    readme = git(remote, "show", "main:leaderboard/README.md")
    assert f"| {method} " not in readme and method not in git(remote, "ls-tree", "-r", "main")

    again = run_job("leaderboard.yml", "regenerate", repo, {}, env)
    assert [step.returncode for step in again] == [0, 0]
    assert "nothing to commit" in again[-1].stdout
    assert git(remote, "rev-parse", "main") == head[0]


@pytest.mark.slow
def test_leaderboard_dispatch_job_publishes_the_results_file(checkout, tmp_path):
    from bench.results import load_results
    from bench.splits import make_split, write_split
    from tests.factories import write_tiny_dataset

    repo = clone(checkout, tmp_path / "main")
    env = runner_env(repo, tmp_path)
    add_submission(repo, env, "ada_logistic")
    commit(repo, "Add ada_logistic")  # merged: the runner checks it out with the method
    dataset = write_tiny_dataset(tmp_path / "tiny")
    write_split(dataset, make_split(dataset, n_folds=2))
    inputs = {"method": "ada_logistic", "profile": "smoke", "dataset": str(dataset.root)}
    expressions = {f"inputs.{key}": value for key, value in inputs.items()}

    steps = run_job("leaderboard.yml", "run-and-publish", repo, expressions, env)
    assert [step.returncode for step in steps] == [0], steps[-1].stdout + steps[-1].stderr
    outputs = Path(env["GITHUB_OUTPUT"]).read_text(encoding="utf-8").splitlines()
    published = f"leaderboard/results/ada_logistic__{dataset.name}__smoke.json"
    assert outputs == [f"results={published}"]
    assert load_results(repo / published).profile == "smoke"
    assert "ada_logistic" in (repo / "leaderboard" / "README.md").read_text(encoding="utf-8")
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
    assert f"Published `{published}`" in summary and "`leaderboard/README.md`" in summary

    # The artifact and the pull request take that output, and the pull request the board.
    later = {step.get("uses", "").split("@")[0]: step for step in _steps("run-and-publish")}
    artifact = later["actions/upload-artifact"]
    assert artifact["with"]["path"] == "${{ steps.run.outputs.results }}"
    assert later["peter-evans/create-pull-request"]["with"]["add-paths"] == "leaderboard"
    assert [s.get("id") for s in _steps("run-and-publish") if "run" in s][-1] == "run"


def _steps(job: str) -> list[dict]:
    return load("leaderboard.yml")["jobs"][job]["steps"]


def test_install_step_leaves_an_empty_torch_spec_to_the_makefile(checkout, tmp_path):
    """The repository variable TORCH_SPEC is empty when unset; make's `?=` would keep that
    empty value (pip then installs no torch), so the install step unsets it."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    repo = clone(checkout, tmp_path / "ci")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "make").write_text(f'#!/bin/sh\nexec {make} -n "$@"\n', encoding="utf-8")
    (fake_bin / "make").chmod(0o755)
    pin = re.search(r"^TORCH_SPEC \?= (.+)$", (repo / "Makefile").read_text(), re.M).group(1)
    for value, expected in (("", pin), ("torch==2.9.1 torchvision==0.24.1", None)):
        env = runner_env(repo, tmp_path)
        env["PATH"] = f"{fake_bin}{os.pathsep}{env['PATH']}"
        env["GITHUB_PATH"] = str(tmp_path / f"path{len(value)}.txt")
        (install,) = [
            step for step in load("ci.yml")["jobs"]["test"]["steps"] if step.get("run") == INSTALL
        ]
        assert install["env"] == {"TORCH_SPEC": "${{ vars.TORCH_SPEC }}"}
        bash = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", install["run"]]
        done = subprocess.run(
            bash, cwd=repo, env={**env, "TORCH_SPEC": value}, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert f"-m pip install --quiet {expected or value}\n" in done.stdout
        assert Path(env["GITHUB_PATH"]).read_text() == f"{repo}/.venv/bin\n"
