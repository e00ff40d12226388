"""`bench submission new/check`: each kind of bad submission is one clear line, exit code 2."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bench.cli.submission_cmd import check_cmd
from bench.errors import BenchError, InputError
from bench.registry import read_submission_manifest
from bench.submissions import check_submission, new_submission, validate_manifest


def _filled_in(text: str) -> str:
    """The template's manifest as a contributor fills it in."""
    return (
        text.replace('["Your Name"]', '["Grace Hopper"]')
        .replace("you@example.org", "grace@example.org")
        .replace("one line: what the method does", "a test submission")
    )


def _submission(root: Path, name: str, adapter: str, manifest_edit=None) -> Path:
    folder = new_submission(name, root)
    path = folder / "submission.toml"
    text = _filled_in(path.read_text(encoding="utf-8"))
    path.write_text(manifest_edit(text) if manifest_edit else text, encoding="utf-8")
    if adapter is not None:
        (folder / "adapter.py").write_text(adapter, encoding="utf-8")
    return folder


def _template_with(fit_body: str = "", preprocess_body: str = "") -> str:
    from bench.submissions import TEMPLATE

    text = (TEMPLATE / "adapter.py").read_text(encoding="utf-8")
    if fit_body:
        text = text.replace("        torch.manual_seed(profile.seed + fold)", f"        {fit_body}")
    if preprocess_body:
        text = text.replace('    """Channels (C, z, y, x)', f'    {preprocess_body}\n    """x')
    return text


def test_new_copies_the_template_with_the_name(tmp_path):
    folder = new_submission("my_net", tmp_path)
    assert read_submission_manifest(folder).name == "my_net"
    assert (folder / "adapter.py").is_file() and (folder / "README.md").is_file()
    with pytest.raises(InputError, match="already exists"):
        new_submission("my_net", tmp_path)
    with pytest.raises(BenchError, match="identifier"):
        new_submission("my-net", tmp_path)


def test_a_manifest_missing_a_field_is_one_line(tmp_path):
    folder = _submission(tmp_path, "no_license", None, lambda t: t.replace('license = "MIT"', ""))
    with pytest.raises(InputError, match="missing required field.*license") as error:
        check_submission(folder)
    assert "\n" not in str(error.value)


def test_the_templates_placeholders_are_refused_until_filled_in(tmp_path):
    folder = new_submission("unfilled", tmp_path)
    with pytest.raises(InputError, match="placeholder: authors, contact, description") as error:
        check_submission(folder)
    assert "\n" not in str(error.value)
    path = folder / "submission.toml"
    path.write_text(_filled_in(path.read_text(encoding="utf-8")), encoding="utf-8")
    assert validate_manifest(folder).authors == ["Grace Hopper"]


def test_every_missing_field_is_named_in_one_line(tmp_path):
    def strip(text: str) -> str:
        lines = text.splitlines(keepends=True)
        return "".join(x for x in lines if not x.startswith(("license", "contact")))

    folder = _submission(tmp_path, "two_missing", None, strip)
    with pytest.raises(InputError, match="missing required field.*contact, license"):
        check_submission(folder)


@pytest.mark.parametrize(
    ("taken", "by"), [("monai_segresnet", "submissions/monai_segresnet"), ("nnunet3d", "built-in")]
)
def test_a_name_another_method_has_is_refused_before_anything_runs(tmp_path, taken, by):
    """A clash would make the registry refuse every later `bench` command: say it here."""
    folder = _submission(
        tmp_path, "copycat", None, lambda t: t.replace('name = "copycat"', f'name = "{taken}"')
    )
    with pytest.raises(InputError, match=f"name '{taken}' is .*{by}") as error:
        check_submission(folder)
    assert "\n" not in str(error.value)


def test_an_entry_that_does_not_import_is_one_line(tmp_path):
    folder = _submission(tmp_path, "broken", "import no_such_package_xyz\n")
    with pytest.raises(BenchError, match="import failed: .*no_such_package_xyz") as error:
        check_submission(folder)
    assert "\n" not in str(error.value)


def test_an_adapter_that_raises_in_fit_is_reported_as_a_fit_failure(tmp_path):
    folder = _submission(
        tmp_path, "fit_fails", _template_with(fit_body="raise RuntimeError('boom')")
    )
    with pytest.raises(BenchError, match="fit failed: RuntimeError: boom") as error:
        check_submission(folder)
    log = Path(str(error.value).split("(log: ")[1].rstrip(")"))
    text = log.read_text(encoding="utf-8")
    assert "Traceback" in text and "raise RuntimeError('boom')" in text  # where it was raised


def test_an_adapter_that_raises_in_predict_is_reported_as_a_predict_failure(tmp_path):
    adapter = _template_with(preprocess_body="raise ValueError('bad input')").replace(
        "def fit(self, train_cases: FoldCases, fold: int, workdir: Path, profile) -> Predictor:",
        "def fit(self, train_cases: FoldCases, fold: int, workdir: Path, profile) -> Predictor:\n"
        "        self.steps = 0",
    )
    adapter = adapter.replace(
        "            for case in train_cases.train[:4]:\n                image, _ = preprocess",
        "            for case in train_cases.train[:4]:\n                image, _ = _read",
    )
    adapter += "\n\ndef _read(files):\n    return np.zeros((1, 1, 1, 1), np.float32), None\n"
    folder = _submission(tmp_path, "predict_fails", adapter)
    with pytest.raises(BenchError, match="predict failed: ValueError: bad input"):
        check_submission(folder)


def test_check_reports_every_path_and_a_bad_one_leaves_the_others_alone(tmp_path, capsys):
    bad = _submission(tmp_path, "bad", "raise SystemExit(3)\n")
    good = _submission(
        tmp_path, "given", None, lambda t: t.replace('kind = "adapter"', 'kind = "predictions"')
    )
    (good / "adapter.py").unlink()
    (good / "predictions").mkdir()
    text = (good / "submission.toml").read_text(encoding="utf-8")
    (good / "submission.toml").write_text(
        text.replace('entry = "adapter:Method"', 'entry = "predictions"'), encoding="utf-8"
    )
    code = check_cmd(argparse.Namespace(paths=[bad, good]))
    out, err = capsys.readouterr()
    assert code == 2
    assert "given: ok" in out and len(err.strip().splitlines()) == 1 and "bad" in err
