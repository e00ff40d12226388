"""One small registry of methods, in the manner of lm-eval's: decorator or lazy registration.

Lazy entries ("module:attr" plus a one-line description) let `bench list` show every method
without importing torch, nnU-Net or a submission's code; the class is imported, and checked
against the base class, only when a method is actually used. Submissions are found by reading
`submissions/*/submission.toml`, never by importing whole folders.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

import tomllib

from bench.adapter import MethodAdapter
from bench.errors import BenchError, InputError

T = TypeVar("T")

SUBMISSION_MANIFEST = "submission.toml"
SUBMISSION_REQUIRED = ("name", "authors", "entry", "kind")
SUBMISSION_KINDS = ("adapter", "predictions")


@dataclass
class Entry:
    name: str
    description: str
    target: str | None = None  # "module:attr" for lazy entries
    obj: type | None = None  # set once imported
    origin: str = "builtin"  # "builtin" or the submission folder


class Registry(Generic[T]):
    """Name → class, with lazy imports, a base-class check and close-match suggestions."""

    def __init__(self, kind: str, base: type[T]):
        self.kind = kind
        self.base = base
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, description: str | None = None) -> Callable[[type], type]:
        """Class decorator: `@METHODS.register("my_method")`."""

        def decorate(cls: type) -> type:
            self._check_base(name, cls)
            doc = (cls.__doc__ or "").strip().splitlines()
            summary = description or getattr(cls, "description", "") or (doc[0] if doc else "")
            self._add(Entry(name, summary, obj=cls))
            return cls

        return decorate

    def register_lazy(self, name: str, target: str, description: str, origin: str = "builtin"):
        """Register `"module:attr"` without importing it."""
        if target.count(":") != 1:
            raise ValueError(f"lazy target {target!r} must look like 'module:attr'")
        self._add(Entry(name, description, target=target, origin=origin))

    def _add(self, entry: Entry) -> None:
        if entry.name in self._entries:
            previous = self._entries[entry.name]
            raise BenchError(
                f"{self.kind} name {entry.name!r} is registered twice "
                f"({previous.origin} and {entry.origin})"
            )
        self._entries[entry.name] = entry

    def _check_base(self, name: str, obj: object) -> None:
        if not (isinstance(obj, type) and issubclass(obj, self.base)):
            raise BenchError(
                f"{self.kind} {name!r}: {obj!r} is not a subclass of {self.base.__name__}"
            )

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

    def get(self, name: str) -> type[T]:
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
            self._check_base(name, obj)
            entry.obj = obj
        return entry.obj

    def describe(self, name: str) -> str:
        return self.entry(name).description


@dataclass(frozen=True)
class SubmissionManifest:
    folder: Path
    name: str
    authors: list[str]
    entry: str
    kind: str
    description: str = ""
    extra: dict = field(default_factory=dict)


def read_submission_manifest(folder: Path) -> SubmissionManifest:
    """Parse and check one `submission.toml` (no code is imported)."""
    path = folder / SUBMISSION_MANIFEST
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise InputError(f"no {SUBMISSION_MANIFEST} in the submission folder", file=path) from error
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"is not valid TOML ({error})", file=path) from error
    missing = [key for key in SUBMISSION_REQUIRED if key not in data]
    if missing:
        raise InputError(f"missing required field(s): {', '.join(missing)}", file=path)
    if data["kind"] not in SUBMISSION_KINDS:
        raise InputError(f"kind {data['kind']!r} must be one of {SUBMISSION_KINDS}", file=path)
    if data["kind"] == "adapter" and str(data["entry"]).count(":") != 1:
        raise InputError(f"entry {data['entry']!r} must look like 'module:Class'", file=path)
    authors = data["authors"] if isinstance(data["authors"], list) else [data["authors"]]
    known = {*SUBMISSION_REQUIRED, "description"}
    return SubmissionManifest(
        folder=folder,
        name=str(data["name"]),
        authors=[str(a) for a in authors],
        entry=str(data["entry"]),
        kind=str(data["kind"]),
        description=str(data.get("description", "")),
        extra={k: v for k, v in data.items() if k not in known},
    )


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
            manifest.description or f"submission by {', '.join(manifest.authors)}",
            origin=f"submissions/{manifest.folder.name}",
        )


METHODS: Registry[MethodAdapter] = Registry("method", MethodAdapter)
_populated = False


def methods() -> Registry[MethodAdapter]:
    """The method registry with the built-in baselines and every submission registered."""
    global _populated
    if not _populated:
        _populated = True
        importlib.import_module("baselines")  # registers built-ins lazily; imports no torch
        import submissions

        register_submissions(METHODS, Path(submissions.__file__).parent)
    return METHODS
