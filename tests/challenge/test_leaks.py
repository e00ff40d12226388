"""The leaks and late refusals found by attacking challenge mode (one test per finding).

Each attack is the one that worked against the earlier harness: the hidden labels handed in
through a swapped output folder, a file overwritten through a link the submission planted,
forged timing, a `--hide` that quietly did not hide, predictions made of links, a NaN mask
taken as good, results and records that crashed the readers, names that escape the results
folder or take another method's, and weaker isolation used without being asked for.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest

from bench.challenge import sandbox
from bench.challenge.collect import check_mask
from bench.challenge.predict import ChallengeRun, predict
from bench.challenge.score import score_challenge
from bench.challenge.supervise import Limits
from bench.cli import main
from bench.errors import BenchError, InputError
from bench.io import read_image, write_image
from bench.results import load_results
from tests.challenge.conftest import SPY, run_challenge, some_images, write_model, write_record
from tests.factories import TINY_GEOMETRY

slow = pytest.mark.slow  # a child that imports torch: 10-20 s to start on 2 busy cores


def _errors(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]


# --- 1. the hidden labels through the output folder ---------------------------------------


@slow
def test_an_output_folder_swapped_for_a_link_to_the_labels_hands_in_nothing_of_them(
    full_isolation, challenge_dataset, honest_run, tmp_path
):
    root = challenge_dataset.root
    config = {"dataset": str(root), "swap_output_at_exit": True, "swap_output_on": ["p003"]}
    model = write_model(tmp_path / "model", **config)
    record = run_challenge(SPY, root / "images", tmp_path / "out", model)
    log = "\n".join(a["stderr_tail"] for a in record.attempts)
    assert log.count("SPY swap: output ->") == 2  # before p003, and again at exit
    outcomes = {c.case: c for c in record.cases}
    # p003's mask went to the swapped folder's old place: the harness reads the folder it
    # made, so the case has no mask (the label behind the link is not read).
    assert outcomes["p003"].status in ("missing", "error"), outcomes["p003"]
    for case, outcome in outcomes.items():
        if case < "p003":  # answered before any swap: the honest threshold, not the label
            assert outcome.status == "ok", (case, outcome.reason)
            mask = read_image(tmp_path / "out" / f"{case}.nii.gz")[0]
            np.testing.assert_array_equal(mask, read_image(honest_run.out / f"{case}.nii.gz")[0])
    for case in outcomes:
        taken = tmp_path / "out" / f"{case}.nii.gz"
        label = read_image(challenge_dataset.case(case).labels["A"])[0]
        if taken.exists() and label.any():
            assert not np.array_equal(read_image(taken)[0], label), case
    # The covers no longer announce themselves in the child's mount list.
    assert "SPY mountinfo names bench-hidden: False" in log


# --- 2. a file overwritten through a link planted in the sandbox ---------------------------


@slow
def test_links_planted_where_the_harness_wrote_are_not_written_through(challenge_dataset, tmp_path):
    victim_dir = tmp_path / "victim"
    victim_dir.mkdir()
    victim = victim_dir / "results.json"
    victim.write_text('{"precious": true}', encoding="utf-8")
    images = some_images(challenge_dataset, ["p001", "p002", "p003"], tmp_path / "images")
    model = write_model(tmp_path / "model", relink_on={"p002": str(victim)})
    record = run_challenge(
        SPY,
        images,
        tmp_path / "out",
        model,
        hide=(challenge_dataset.root,),
    )
    assert victim.read_text(encoding="utf-8") == '{"precious": true}'
    assert sorted(p.name for p in victim_dir.iterdir()) == ["results.json"]
    outcomes = {c.case: c for c in record.cases}
    assert outcomes["p001"].status == "ok"
    assert outcomes["p002"].status == "crashed" and "exit code 7" in outcomes["p002"].reason
    # The restarted child finds `input` a link: its image went to the folder the harness made.
    assert outcomes["p003"].status == "error", outcomes["p003"]


# --- 3. forged timing --------------------------------------------------------------------


@slow
def test_timing_is_the_harness_own_whatever_the_child_reports(challenge_dataset, tmp_path):
    images = some_images(challenge_dataset, ["p001", "p002"], tmp_path / "images")
    model = write_model(tmp_path / "model", forge_timing_s=2.0, load_sleep_s=2.0)
    record = run_challenge(
        SPY,
        images,
        tmp_path / "out",
        model,
        hide=(challenge_dataset.root,),
    )
    assert "SPY forge: events rewritten" in record.attempts[0]["stderr_tail"]
    assert all(c.status == "ok" for c in record.cases), record.cases
    assert all(c.latency_s >= 2.0 for c in record.cases), [c.latency_s for c in record.cases]
    assert record.attempts[0]["load_s"] >= 2.0


# --- 4. --hide that cannot hide ----------------------------------------------------------


def test_hiding_a_file_is_an_error_not_a_downgrade(challenge_dataset, tmp_path, capsys):
    secret = tmp_path / "some_file.txt"
    secret.write_text("labels", encoding="utf-8")
    images = some_images(challenge_dataset, ["p001"], tmp_path / "images")
    argv = ["challenge", "predict", "--submission", str(SPY), "--images", str(images)]
    argv += ["--model", str(write_model(tmp_path / "model")), "--out", str(tmp_path / "out")]
    assert main([*argv, "--profile", "smoke", "--hide", str(secret)]) == 2
    (error,) = _errors(capsys)
    assert "some_file.txt" in error and "folder" in error
    assert not (tmp_path / "out").exists()


def test_a_hidden_path_the_sandbox_cannot_cover_stops_the_probe(full_isolation, tmp_path):
    box, secret = tmp_path / "box", tmp_path / "secret.txt"
    box.mkdir()
    secret.write_text("labels", encoding="utf-8")  # a tmpfs cannot be mounted on a file
    plan = sandbox.SandboxPlan(box, (secret,), (), sandbox.read_only_mounts(box))
    with pytest.raises(BenchError, match="cannot hide .*secret.txt"):
        sandbox.probe(plan)


def test_hide_without_the_full_sandbox_is_an_error(challenge_dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "probe", lambda plan: sandbox.Isolation("network", ["no fs"]))
    images = some_images(challenge_dataset, ["p001"], tmp_path / "images")
    run = ChallengeRun(
        SPY,
        images,
        tmp_path / "out",
        write_model(tmp_path / "model"),
        profile="smoke",
        hide=(challenge_dataset.root,),
        require_isolation=False,
    )
    with pytest.raises(BenchError, match="cannot be honoured"):
        predict(run)


# --- 5. predictions made of links: tests/submissions/test_links.py -------------------------


# --- 6. a NaN in a float mask ---------------------------------------------------------------


def test_a_float_mask_with_a_nan_is_malformed(tmp_path):
    array = np.zeros(TINY_GEOMETRY.shape_zyx, np.float32)
    array[1, 2:4, 2:4] = 1.0
    array[0, 0, 0] = np.nan
    path = tmp_path / "p001.nii.gz"
    write_image(array, TINY_GEOMETRY, path)
    assert "NaN" in check_mask(path, TINY_GEOMETRY, "p001")


# --- 7. results files that crashed the leaderboard ---------------------------------------


@pytest.mark.parametrize(
    "text",
    ['{"schema_version": ' + "9" * 5000 + "}", "[" * 100_000 + "]" * 100_000],
    ids=["5000-digit integer", "nested 100000 deep"],
)
def test_a_results_file_that_is_not_the_schema_is_one_line(text, tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    (results / "x__d__p.json").write_text(text, encoding="utf-8")
    argv = ["leaderboard", "--results-dir", str(results), "--out", str(tmp_path / "README.md")]
    assert main(argv) == 2
    (error,) = _errors(capsys)
    assert "x__d__p.json" in error and len(error) < 300


def test_a_huge_integer_where_a_metric_goes_is_a_schema_error(tmp_path):
    source = sorted(Path("leaderboard/results").glob("*.json"))[0]
    data = json.loads(source.read_text(encoding="utf-8"))
    columns = data["per_case"]["columns"]
    data["per_case"]["rows"][0][columns.index("Dice")] = 10**400
    path = tmp_path / source.name
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(BenchError, match="expected a number, got a huge integer"):
        load_results(path)


# --- 8. a challenge record that crashed scoring --------------------------------------------


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"cases": "drop"}, "cases must be a non-empty list"),
        ({"cases": [1, 2]}, "cases[0] must be an object"),
        ({"isolation": "full"}, "isolation must be an object"),
        ({"attempts": [{"peak_rss_mb": "x"}]}, "peak_rss_mb"),
    ],
)
def test_a_broken_challenge_record_is_one_line(
    changes, problem, challenge_dataset, tmp_path, capsys
):
    folder = tmp_path / "pred"
    folder.mkdir()
    cases = [c.id for c in challenge_dataset.cases]
    record = write_record(folder, cases, **changes)
    if changes.get("cases") == "drop":
        data = json.loads(record.read_text(encoding="utf-8"))
        del data["cases"]
        record.write_text(json.dumps(data), encoding="utf-8")
    argv = ["challenge", "score", "--dataset", str(challenge_dataset.root)]
    assert main([*argv, "--predictions", str(folder), "--out", str(tmp_path / "r.json")]) == 2
    (error,) = _errors(capsys)
    assert problem in error and "challenge_record.json" in error


# --- 9. names that escape the results folder or take another method's --------------------


def _renamed_spy(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / f"spy_{uuid.uuid4().hex[:6]}"
    shutil.copytree(SPY, folder)
    manifest = folder / "submission.toml"
    text = manifest.read_text(encoding="utf-8").replace('"challenge_spy"', json.dumps(name))
    manifest.write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("name", "problem"),
    [("../../../../tmp/x", "must be letters, digits"), ("nnunet3d", "is a built-in method")],
)
def test_a_name_that_escapes_or_clashes_is_refused_before_anything_runs(
    name, problem, challenge_dataset, tmp_path, monkeypatch
):
    ran = []
    monkeypatch.setattr(sandbox, "probe", lambda plan: ran.append(plan))
    run = ChallengeRun(
        _renamed_spy(tmp_path, name),
        some_images(challenge_dataset, ["p001"], tmp_path / "images"),
        tmp_path / "out",
        write_model(tmp_path / "model"),
        profile="smoke",
    )
    with pytest.raises(InputError, match=problem):
        predict(run)
    assert not ran and not (tmp_path / "out").exists()


# --- 10. weaker isolation only when asked for ----------------------------------------------


def test_predict_refuses_weaker_isolation_unless_allowed(challenge_dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "probe", lambda plan: sandbox.Isolation("none", ["no unshare"]))
    run = ChallengeRun(
        SPY,
        some_images(challenge_dataset, ["p001"], tmp_path / "images"),
        tmp_path / "out",
        write_model(tmp_path / "model"),
        profile="smoke",
    )
    with pytest.raises(BenchError, match="full isolation is required.*--allow-weaker-isolation"):
        predict(run)


def test_score_refuses_predictions_made_below_full_isolation(challenge_dataset, tmp_path, capsys):
    folder = tmp_path / "pred"
    folder.mkdir()
    cases = [c.id for c in challenge_dataset.cases]
    for case in cases:
        shutil.copyfile(challenge_dataset.case(case).labels["B"], folder / f"{case}.nii.gz")
    write_record(folder, cases, isolation={"level": "none"})
    argv = ["challenge", "score", "--dataset", str(challenge_dataset.root)]
    argv += ["--predictions", str(folder), "--out", str(tmp_path / "r.json")]
    assert main(argv) == 2
    (error,) = _errors(capsys)
    assert "'none'" in error and "--allow-weaker-isolation" in error
    assert main([*argv, "--allow-weaker-isolation"]) == 0
    outcome = score_challenge(
        challenge_dataset, folder, tmp_path / "r2.json", allow_weaker_isolation=True
    )
    assert outcome.results_path.is_file()


@slow
def test_memory_is_limited_for_the_whole_submission_where_a_cgroup_is_allowed(
    isolation, challenge_dataset, tmp_path
):
    from bench.challenge.cgroup import make_child_group

    group, why = make_child_group(1 << 30)
    if group is None:
        pytest.skip(f"this machine allows no cgroup for the child: {why}")
    group.remove()
    images = some_images(challenge_dataset, ["p001", "p002"], tmp_path / "images")
    # Three helpers of 2.5 GB: each under the 5 GB per-process limit, together over 5 GB.
    model = write_model(tmp_path / "model", helpers_gb_on={"p001": [2.5, 2.5, 2.5]})
    record = run_challenge(
        SPY,
        images,
        tmp_path / "out",
        model,
        memory_gb=5,
        hide=(challenge_dataset.root,),
    )
    assert record.limits["memory_whole_submission"].startswith("cgroup v")
    outcomes = {c.case: c for c in record.cases}
    assert outcomes["p001"].status == "memory", outcomes["p001"]
    assert "together passed the 5 GB limit" in outcomes["p001"].reason
    assert outcomes["p002"].status == "ok"


@slow
def test_detached_processes_die_with_the_run_at_level_network(
    isolation, challenge_dataset, tmp_path, monkeypatch
):
    from tests.challenge.test_hostile import _sleepers

    if isolation.level not in ("full", "network"):
        pytest.skip(f"no network namespace here: {'; '.join(isolation.notes)}")
    monkeypatch.setattr(sandbox, "probe", lambda plan: sandbox.Isolation("network", ["forced"]))
    marker = f"998.{uuid.uuid4().int % 10**9}"
    images = some_images(challenge_dataset, ["p001"], tmp_path / "images")
    model = write_model(tmp_path / "model", escape_marker=marker)
    record = predict(
        ChallengeRun(
            SPY,
            images,
            tmp_path / "out",
            model,
            profile="smoke",
            threads=1,
            limits=Limits(30.0, 120.0, 16.0),
            require_isolation=False,
        )
    )
    assert record.isolation["level"] == "network"
    assert "SPY escape: started sleep" in record.attempts[0]["stderr_tail"]
    survivors = _sleepers(marker)
    for pid in survivors:
        os.kill(int(pid), 9)
    assert not survivors
