"""The method registry: decorator and lazy entries, the adapter contract, duplicates,
suggestions, temporary methods, and discovery that imports neither baselines nor submissions."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench.adapter import MethodAdapter
from bench.builtin_methods import BUILTIN_METHODS
from bench.errors import BenchError, InputError
from bench.registry import (
    Registry,
    check_method_class,
    discover_submissions,
    methods,
    read_submission_manifest,
    register_submissions,
)


class Good(MethodAdapter):
    """A method that does nothing (for registry tests only)."""

    def fit(self, train_cases, fold, workdir, profile):
        return None


class NotAnAdapter:
    pass


class ReadsPerfusion(Good):
    """Declares a channel the harness cannot make."""

    input_channels = ("image", "perfusion")


def fresh() -> Registry:
    return Registry()


def test_decorator_registers_and_describes_from_docstring():
    registry = fresh()
    registry.register("good")(Good)
    assert registry.get("good") is Good
    assert registry.describe("good") == "A method that does nothing (for registry tests only)."
    assert list(registry) == ["good"]


def test_decorator_rejects_a_class_that_is_not_an_adapter():
    with pytest.raises(BenchError, match="not a subclass of MethodAdapter"):
        fresh().register("bad")(NotAnAdapter)


def test_duplicate_names_are_errors():
    registry = fresh()
    registry.register("good")(Good)
    with pytest.raises(BenchError, match="registered twice"):
        registry.register_lazy("good", "tests.test_registry:Good", "again")


def test_unknown_name_suggests_close_matches():
    registry = fresh()
    registry.register_lazy("nnunet3d_mirrored", "x:y", "d")
    registry.register_lazy("nnunet2d", "x:y", "d")
    with pytest.raises(BenchError, match=r"did you mean 'nnunet3d_mirrored'"):
        registry.entry("nnunet3d_mirored")
    with pytest.raises(BenchError) as error:
        registry.entry("zzz")
    assert "did you mean" not in str(error.value)


def test_lazy_entry_is_not_imported_until_used(tmp_path, monkeypatch):
    module = tmp_path / "lazy_probe_module.py"
    module.write_text(
        "from bench.adapter import MethodAdapter\n"
        "IMPORTED = True\n"
        "class Probe(MethodAdapter):\n"
        "    def fit(self, *a):\n        return None\n"
    )
    monkeypatch.syspath_prepend(tmp_path)
    registry = fresh()
    registry.register_lazy("probe", "lazy_probe_module:Probe", "a probe")
    assert "lazy_probe_module" not in sys.modules
    assert registry.describe("probe") == "a probe"
    assert "lazy_probe_module" not in sys.modules
    assert registry.get("probe").__name__ == "Probe"
    assert "lazy_probe_module" in sys.modules


def test_lazy_entry_with_wrong_base_or_missing_target_fails_clearly():
    registry = fresh()
    registry.register_lazy("wrong", "tests.test_registry:NotAnAdapter", "d")
    registry.register_lazy("gone", "no_such_module_xyz:Thing", "d")
    with pytest.raises(BenchError, match="not a subclass"):
        registry.get("wrong")
    with pytest.raises(BenchError, match="cannot import no_such_module_xyz:Thing"):
        registry.get("gone")


def write_submission(root: Path, folder: str, toml: str) -> Path:
    path = root / folder
    path.mkdir(parents=True)
    (path / "submission.toml").write_text(textwrap.dedent(toml))
    (path / "adapter.py").write_text("")
    return path


GOOD_TOML = """
    name = "my_method"
    authors = ["Ada Lovelace"]
    contact = "ada@example.org"
    description = "a contributed method"
    license = "MIT"
    entry = "adapter:Method"
    kind = "adapter"
"""


def test_submissions_are_discovered_without_importing_them(tmp_path):
    folder = write_submission(tmp_path, "my_method", GOOD_TOML)
    (folder / "adapter.py").write_text("raise RuntimeError('must not be imported')\n")
    write_submission(tmp_path, "_template", GOOD_TOML.replace("my_method", "template"))
    registry = fresh()
    register_submissions(registry, tmp_path, package="not_imported_pkg")
    assert list(registry) == ["my_method"]
    assert registry.describe("my_method") == "a contributed method"
    assert registry.entry("my_method").target == "not_imported_pkg.my_method.adapter:Method"
    assert [m.name for m in discover_submissions(tmp_path)] == ["my_method"]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            'name = "x"\nauthors = ["a"]\nkind = "adapter"\n',
            "missing required field.*contact, description, license, entry",
        ),
        (GOOD_TOML.replace('"MIT"', '"  "'), "missing required field.*: license$"),
        (
            GOOD_TOML.replace('MIT"\n', 'MIT"\n    input_channels = ["image"]\n'),
            "input_channels belongs on the adapter class",
        ),
        (GOOD_TOML.replace("adapter:Method", "model:Method"), "no file model.py"),
        (GOOD_TOML.replace('"adapter"\n', '"binary"\n'), "kind 'binary' must be one of"),
        (GOOD_TOML.replace("adapter:Method", "adapter.Method"), "must look like 'module:Class'"),
        ("name = [unclosed", "is not valid TOML"),
    ],
)
def test_bad_submission_manifests_name_the_file_and_problem(tmp_path, toml, message):
    folder = write_submission(tmp_path, "bad", toml)
    with pytest.raises(InputError, match=message) as error:
        read_submission_manifest(folder)
    assert "submission.toml" in str(error.value)


def test_submission_folder_must_be_an_identifier(tmp_path):
    write_submission(tmp_path, "my-method", GOOD_TOML)
    with pytest.raises(InputError, match="Python identifier"):
        register_submissions(fresh(), tmp_path)


def test_two_submissions_with_one_name_are_a_duplicate(tmp_path):
    write_submission(tmp_path, "first", GOOD_TOML)
    write_submission(tmp_path, "second", GOOD_TOML)
    with pytest.raises(BenchError, match="registered twice.*submissions/first.*submissions/second"):
        register_submissions(fresh(), tmp_path)


def test_bench_list_shows_predictions_submissions_with_how_they_are_scored(
    tmp_path, monkeypatch, capsys
):
    from bench.cli import main

    methods()  # the real registry, populated before the submissions folder is swapped
    given = GOOD_TOML.replace('"adapter"\n', '"predictions"\n').replace("adapter:Method", "given")
    write_submission(tmp_path, "handed_in", given.replace("my_method", "handed_in"))
    monkeypatch.setattr("bench.registry.submissions_root", lambda: tmp_path)
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    handed_in = next(line for line in lines if line.startswith("handed_in "))
    assert "submissions/handed_in" in handed_in and "bench score" in handed_in
    assert "bench run" in next(line for line in lines if line.startswith("nnunet3d "))


def test_the_adapter_class_alone_declares_input_channels():
    assert check_method_class("good", Good) is Good
    with pytest.raises(BenchError, match=r"method 'wrong': input_channels .*'perfusion'"):
        check_method_class("wrong", ReadsPerfusion)
    registry = fresh()
    with pytest.raises(BenchError, match="input_channels"):
        registry.register("wrong")(ReadsPerfusion)
    registry.register_lazy("lazy_wrong", "tests.test_registry:ReadsPerfusion", "d")
    with pytest.raises(BenchError, match="input_channels"):
        registry.get("lazy_wrong")


def test_temporary_methods_are_registered_inside_the_block_only():
    registry = fresh()
    registry.register("good")(Good)
    with registry.temporary({"probe": Good, "lazy": "tests.test_registry:Good"}):
        assert list(registry) == ["good", "lazy", "probe"]
        assert registry.entry("probe").origin == "temporary"
        assert registry.get("lazy") is Good
    assert list(registry) == ["good"]
    with pytest.raises(RuntimeError, match="boom"), registry.temporary({"probe": Good}):
        raise RuntimeError("boom")
    assert list(registry) == ["good"]
    with pytest.raises(BenchError, match="registered twice"), registry.temporary({"good": Good}):
        pass
    assert registry.get("good") is Good  # a refused temporary name leaves the original alone


def test_unregister_removes_a_name_and_refuses_an_unknown_one():
    registry = fresh()
    registry.register("good")(Good)
    registry.unregister("good")
    assert "good" not in registry
    with pytest.raises(BenchError, match="unknown method 'good'"):
        registry.unregister("good")


def test_the_real_registry_has_every_builtin_and_the_example_submission():
    registry = methods()
    assert set(BUILTIN_METHODS) <= set(registry)
    assert registry.entry("nnunet3d").target == BUILTIN_METHODS["nnunet3d"].target
    assert registry.entry("monai_segresnet").origin == "submissions/monai_segresnet"


def test_listing_the_methods_imports_no_baseline_submission_or_deep_learning_module():
    """The registry is a leaf: filling it reads a table and manifests, it imports no plugin."""
    plugins = ("baselines", "submissions", "torch", "nnunetv2", "monai")
    code = (
        "import sys\nfrom bench.registry import methods\n"
        "registry = methods()\nassert len(registry) > 9 and registry.describe('nnunet3d')\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {plugins!r})\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
