"""Per-case cache of scored rows, so that a rerun scores only what changed.

One JSON file per case, written atomically (temp file, then `os.replace`), holding a key and
the rows. The key hashes the evaluator's version, the settings and every input file's path,
size and modification time: touching any mask of a case rescores that case, nothing else.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.io import write_text

log = logging.getLogger(__name__)

# Bump when a metric definition changes: every cached row becomes stale.
EVALUATOR_VERSION = "2"  # 2: lesion-wise detection columns


def file_stamp(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def case_key(files: Iterable[Path], settings: dict[str, Any]) -> str:
    """Hash of the evaluator version, settings and the files' (path, size, mtime)."""
    digest = hashlib.sha256(EVALUATOR_VERSION.encode())
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for stamp in sorted(file_stamp(Path(p)) for p in files):
        digest.update(stamp.encode())
    return digest.hexdigest()


def _safe_name(case: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in case) + ".json"


def _to_json(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _from_json(value: Any) -> Any:
    return float("nan") if value is None else value


class CaseCache:
    """Rows per case under a folder; `None` as folder disables caching."""

    def __init__(self, folder: Path | None):
        self.folder = Path(folder) if folder is not None else None

    def load(self, case: str, key: str) -> list[dict[str, Any]] | None:
        if self.folder is None:
            return None
        path = self.folder / _safe_name(case)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if data.get("key") != key or data.get("case") != case:
            return None
        return [{k: _from_json(v) for k, v in row.items()} for row in data["rows"]]

    def store(self, case: str, key: str, rows: list[dict[str, Any]]) -> None:
        if self.folder is None:
            return
        data = {
            "case": case,
            "key": key,
            "rows": [{k: _to_json(v) for k, v in row.items()} for row in rows],
        }
        write_text(json.dumps(data, allow_nan=False) + "\n", self.folder / _safe_name(case))
        log.debug("cached %s", case)
