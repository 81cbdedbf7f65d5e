"""Files written so that a reader never sees half of one: every write goes to a temporary file (or folder) beside
the target and is renamed over it. A killed process leaves the old version or the new one, never a mix."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterable, Iterator

from pydantic import BaseModel


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def write_text_atomic(path: str | Path, text: str, *, fsync: bool = False) -> Path:
    """Write `text` to `path` in one rename; `fsync` also forces it to disk first (for files a resume trusts)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def to_json(value: Any) -> str:
    """One line of JSON for a row or a pydantic model."""
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return json.dumps(value, ensure_ascii=False, default=str)


def write_json_atomic(path: str | Path, data: object) -> Path:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    return write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def write_jsonl_atomic(path: str | Path, rows: Iterable[Any], *, fsync: bool = False) -> Path:
    """Rows (dicts or pydantic models) as JSON lines, the file rewritten whole: a rerun never duplicates a row."""
    return write_text_atomic(path, "".join(to_json(r) + "\n" for r in rows), fsync=fsync)


def read_jsonl(path: str | Path) -> list[dict]:
    """Every non-empty line of a JSON-lines file (an absent file has none)."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_json(path: str | Path, default: Any = None) -> Any:
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else default


@contextlib.contextmanager
def staged_folder(target: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder beside `target`; when the block ends without an error, the staging folder
    replaces `target` (an old one is removed only after the new one is in place). On an error nothing changes."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.staging{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        replace_folder(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def replace_folder(source: Path, target: Path) -> None:
    """Move `source` to `target`, replacing what is there with a rename on each side."""
    if target.exists():
        old = target.with_name(f".{target.name}.old{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(source, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(source, target)


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table; cell text is escaped so a '|' or a line break cannot break the layout."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in rows]
    return "\n".join(lines)
