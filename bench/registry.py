"""One small registry of methods, in the manner of lm-eval's: decorator or lazy registration.

Lazy entries ("module:attr" plus a one-line description) let `bench list` show every method
without importing torch, nnU-Net or a submission's code; the class is imported, and checked
against the adapter contract, only when a method is actually used. The registry is a leaf: the
built-ins are a table of names (`bench.builtin_methods`) and submissions are found by reading
`submissions/*/submission.toml`, so no module it imports registers anything into it.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

from bench.adapter import CHANNELS, MethodAdapter
from bench.builtin_methods import BUILTIN_METHODS
from bench.errors import BenchError, InputError

SUBMISSION_MANIFEST = "submission.toml"
# Every field a reviewer needs; `bench list`, `bench run` and `bench submission check` all ask
# for the same ones, so a manifest the registry accepts is never one the check refuses.
SUBMISSION_REQUIRED = ("name", "authors", "contact", "description", "license", "kind", "entry")
SUBMISSION_KINDS = ("adapter", "predictions")
# The results schema's rule for names (`bench.results`): a name becomes part of file names.
SUBMISSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass
class Entry:
    name: str
    description: str
    target: str | None = None  # "module:attr" for lazy entries
    obj: type[MethodAdapter] | None = None  # set once imported
    origin: str = "builtin"  # "builtin", the submission folder, or who registered it


def check_method_class(name: str, obj: object) -> type[MethodAdapter]:
    """`obj` if it keeps the adapter contract: a `MethodAdapter` subclass whose
    `input_channels` (declared on the class, nowhere else) are known channels."""
    if not (isinstance(obj, type) and issubclass(obj, MethodAdapter)):
        raise BenchError(f"method {name!r}: {obj!r} is not a subclass of MethodAdapter")
    channels = obj.input_channels
    if isinstance(channels, str) or not channels or any(c not in CHANNELS for c in channels):
        raise BenchError(
            f"method {name!r}: input_channels {channels!r} must be a non-empty tuple of "
            f"{', '.join(repr(c) for c in CHANNELS)}"
        )
    return obj


class Registry:
    """Method name -> adapter class, with lazy imports, the contract check and close-match
    suggestions."""

    kind = "method"

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}

    def register(
        self, name: str, description: str | None = None, origin: str = "builtin"
    ) -> Callable[[type], type]:
        """Class decorator: `@methods().register("my_method")`."""

        def decorate(cls: type) -> type:
            check_method_class(name, cls)
            doc = (cls.__doc__ or "").strip().splitlines()
            summary = description or getattr(cls, "description", "") or (doc[0] if doc else "")
            self._add(Entry(name, summary, obj=cls, origin=origin))
            return cls

        return decorate

    def register_lazy(self, name: str, target: str, description: str, origin: str = "builtin"):
        """Register `"module:attr"` without importing it."""
        if target.count(":") != 1:
            raise ValueError(f"lazy target {target!r} must look like 'module:attr'")
        self._add(Entry(name, description, target=target, origin=origin))

    def unregister(self, name: str) -> None:
        """Remove `name` (an unknown name is an error, with suggestions)."""
        self.entry(name)
        del self._entries[name]

    @contextmanager
    def temporary(self, methods: Mapping[str, type | str]) -> Iterator[None]:
        """Register `methods` (name -> class, or "module:attr") for a with-block only, e.g.
        test methods; a name already taken is refused as `register` refuses it."""
        added = []
        try:
            for name, method in methods.items():
                if isinstance(method, str):
                    self.register_lazy(name, method, "", origin="temporary")
                else:
                    self.register(name, origin="temporary")(method)
                added.append(name)
            yield
        finally:
            for name in added:
                self._entries.pop(name, None)

    def _add(self, entry: Entry) -> None:
        if entry.name in self._entries:
            previous = self._entries[entry.name]
            raise BenchError(
                f"{self.kind} name {entry.name!r} is registered twice "
                f"({previous.origin} and {entry.origin})"
            )
        self._entries[entry.name] = entry

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, name: str) -> Entry:
        if name not in self._entries:
            close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise BenchError(f"unknown {self.kind} {name!r}{hint} (`bench list` shows all)")
        return self._entries[name]

    def get(self, name: str) -> type[MethodAdapter]:
        """The registered class, imported now if it was registered lazily."""
        entry = self.entry(name)
        if entry.obj is None:
            module_name, attr = entry.target.split(":")
            try:
                module = importlib.import_module(module_name)
                obj = getattr(module, attr)
            except (ImportError, AttributeError) as error:
                raise BenchError(
                    f"{self.kind} {name!r}: cannot import {entry.target} ({error})"
                ) from error
            entry.obj = check_method_class(name, obj)
        return entry.obj

    def describe(self, name: str) -> str:
        return self.entry(name).description


@dataclass(frozen=True)
class SubmissionManifest:
    folder: Path
    name: str
    authors: list[str]
    contact: str
    description: str
    license: str
    kind: str
    entry: str
    extra: dict = field(default_factory=dict)  # optional fields (profile, version, ...)


def read_submission_manifest(folder: Path) -> SubmissionManifest:
    """Parse and check one `submission.toml` (no code is imported): every problem in one line."""
    path = folder / SUBMISSION_MANIFEST
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise InputError(f"no {SUBMISSION_MANIFEST} in the submission folder", file=path) from error
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"is not valid TOML ({error})", file=path) from error
    if "input_channels" in data:  # declared once, on the adapter class the harness runs
        raise InputError(
            "input_channels belongs on the adapter class (input_channels = (...)), not in the "
            "manifest: remove it",
            file=path,
        )
    missing = [key for key in SUBMISSION_REQUIRED if not _filled(data.get(key))]
    if missing:  # every missing field at once, not one per round
        raise InputError(f"missing required field(s): {', '.join(missing)}", file=path)
    kind, entry = str(data["kind"]), str(data["entry"])
    name = str(data["name"])
    if not SUBMISSION_NAME.fullmatch(name) or "__" in name:
        raise InputError(
            f"name {name!r} must be letters, digits, '.', '_' or '-', starting with a letter or "
            "digit (no '__'): it names files and leaderboard rows",
            file=path,
        )
    if kind not in SUBMISSION_KINDS:
        raise InputError(f"kind {kind!r} must be one of {SUBMISSION_KINDS}", file=path)
    if kind == "adapter":
        if entry.count(":") != 1:
            raise InputError(f"entry {entry!r} must look like 'module:Class'", file=path)
        module = entry.split(":")[0]
        if not (folder / f"{module.replace('.', '/')}.py").is_file():
            raise InputError(f"entry {entry!r}: no file {module}.py in the folder", file=path)
    authors = data["authors"] if isinstance(data["authors"], list) else [data["authors"]]
    return SubmissionManifest(
        folder=folder,
        name=name,
        authors=[str(a) for a in authors],
        contact=str(data["contact"]),
        description=str(data["description"]),
        license=str(data["license"]),
        kind=kind,
        entry=entry,
        extra={k: v for k, v in data.items() if k not in SUBMISSION_REQUIRED},
    )


def _filled(value) -> bool:
    if isinstance(value, list):
        return any(str(v).strip() for v in value)
    return value is not None and bool(str(value).strip())


def discover_submissions(root: Path) -> list[SubmissionManifest]:
    """Every `root/<folder>/submission.toml`, skipping folders that start with '_' or '.'."""
    if not root.is_dir():
        return []
    return [
        read_submission_manifest(folder)
        for folder in sorted(root.iterdir())
        if folder.is_dir()
        and not folder.name.startswith(("_", "."))
        and (folder / SUBMISSION_MANIFEST).is_file()
    ]


def register_submissions(registry: Registry, root: Path, package: str = "submissions") -> None:
    """Lazily register every adapter submission under `root` (a folder of the package `package`)."""
    for manifest in discover_submissions(root):
        if manifest.kind != "adapter":
            continue
        if not manifest.folder.name.isidentifier():
            raise InputError(
                "submission folder name must be a Python identifier (letters, digits, _)",
                file=manifest.folder,
            )
        module, attr = manifest.entry.split(":")
        registry.register_lazy(
            manifest.name,
            f"{package}.{manifest.folder.name}.{module}:{attr}",
            manifest.description,
            origin=f"submissions/{manifest.folder.name}",
        )


def submissions_root() -> Path:
    """The `submissions/` folder beside the `bench` package (in the repository, or installed
    beside it), found without importing the `submissions` package."""
    return Path(__file__).resolve().parent.parent / "submissions"


def prediction_submissions() -> list[SubmissionManifest]:
    """Submissions of kind "predictions": scored by `bench score`, never run, so not methods."""
    return [m for m in discover_submissions(submissions_root()) if m.kind == "predictions"]


_METHODS = Registry()
_populated = False


def methods() -> Registry:
    """The method registry with the built-in methods and every adapter submission registered
    (lazily: nothing is imported)."""
    global _populated
    if not _populated:
        _populated = True
        for name, builtin in BUILTIN_METHODS.items():
            _METHODS.register_lazy(name, builtin.target, builtin.description)
        register_submissions(_METHODS, submissions_root())
    return _METHODS
