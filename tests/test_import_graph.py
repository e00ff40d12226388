"""No import cycle between the project's modules (bench, baselines, submissions).

An edge A -> B is an import that runs when A is imported: an `import` statement at module level
(not in a function, not under `if TYPE_CHECKING:`), or `importlib.import_module("B")` with a
literal name anywhere in A. A function-level `import` statement only loads what that function
uses, once both modules exist; importing a module by name is how a plugin is pulled in for its
side effects (registration), which is the cycle this test exists to keep out: the registry once
imported `baselines`, which imported the registry back to register into it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "baselines", "submissions")


def project_modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the packages under `root`."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imported_names(tree: ast.Module, module: str, is_package: bool) -> Iterator[str]:
    def visit(node: ast.AST, in_function: bool) -> Iterator[str]:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            in_function = True
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (name for child in node.orelse for name in visit(child, in_function))
            return
        if isinstance(node, ast.Import) and not in_function:
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not in_function:
            base = node.module or ""
            if node.level:  # relative: from the package this module is in
                package = module.split(".")[: None if is_package else -1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, *([node.module] if node.module else [])])
            yield from (f"{base}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (getattr(node.func, "attr", None) or getattr(node.func, "id", None))
            == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.args[0].value
        for child in ast.iter_child_nodes(node):
            yield from visit(child, in_function)

    for statement in tree.body:
        yield from visit(statement, False)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the project modules it imports (`from a import b` counts as `a.b` when that is
    a module, else as `a`)."""
    modules = project_modules(root)

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        names = _imported_names(tree, module, path.name == "__init__.py")
        graph[module] = {target for name in names if (target := resolve(name))} - {module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first search)."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" after

    def search(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := search(target, [*path, target])):
                return cycle
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := search(node, [node])):
            return cycle
    return None


def test_find_cycle_finds_a_known_cycle_and_passes_a_chain():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_module_level_imports_and_imports_by_name(tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "__init__.py").write_text("")
    (bench / "registry.py").write_text(
        "import importlib\nfrom typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from bench import typed\n"
        "def methods():\n    from bench import lazy\n    importlib.import_module('bench.plugin')\n"
    )
    (bench / "plugin.py").write_text("from bench.registry import methods\n")
    for name in ("typed", "lazy"):
        (bench / f"{name}.py").write_text("import bench.registry\n")
    graph = import_graph(tmp_path)
    assert graph["bench.registry"] == {"bench.plugin"}
    assert find_cycle(graph) == ["bench.registry", "bench.plugin", "bench.registry"]


def test_no_import_cycle_between_the_projects_modules():
    graph = import_graph(ROOT)
    assert len(graph) > 50 and graph["bench.registry"]  # the walk found the project
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))
