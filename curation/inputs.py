"""Read any corpus into records: a run folder, a saved dataset folder, a parquet file or a JSONL file.

Rows need a `prompt` and a `domain`; every other record field is optional (a missing `id` is derived from
the prompt and domain, a missing `label` is `harmful`). A bad row stops the stage before any model loads,
naming the file, the line and what was expected.
"""

from __future__ import annotations

from pathlib import Path

import datasets

from psychosafe.core.config import SeedSource
from psychosafe.errors import InputError
from psychosafe.pipelines.seeds import read_rows
from psychosafe.schemas import Record, default_taxonomy, record_id, row_to_record

MAX_LISTED_LINES = 5


def _row_to_record(row: dict) -> Record:
    """One row -> a Record, or ValueError saying what is wrong with it."""
    prompt = row.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("missing `prompt` (the user message, a non-empty string)")
    known = default_taxonomy().domain_ids()
    domain = row.get("domain")
    if not domain:
        raise ValueError(f"missing `domain`; expected one of {known}")
    if domain not in known:
        raise ValueError(f"unknown domain {domain!r}; expected one of {known}")
    return row_to_record({"label": "harmful", "id": record_id(prompt, domain)} | {k: v for k, v in row.items()
                                                                                 if v is not None})


def _dataset_rows(path: Path) -> list[tuple[int, dict]]:
    ds = datasets.load_from_disk(str(path))
    splits = list(ds.values()) if isinstance(ds, datasets.DatasetDict) else [ds]
    rows = [row for split in splits for row in split]
    return list(enumerate(rows, start=1))


def _file_rows(path: Path, fmt: str) -> list[tuple[int, dict]]:
    # The seed importer already reads JSONL and parquet line by line, with a problem per bad line.
    _, rows = read_rows(SeedSource(path=str(path), format=fmt))
    bad = [(line, problem) for line, row, problem in rows if problem]
    if bad:
        raise InputError(path, f"{bad[0][1]}" + _more(bad), line=bad[0][0])
    return [(line, row) for line, row, _ in rows]


def _more(bad: list) -> str:
    if len(bad) < 2:
        return ""
    lines = ", ".join(str(line) for line, _ in bad[1:1 + MAX_LISTED_LINES])
    return f" (and {len(bad) - 1} more bad line(s): {lines}{', ...' if len(bad) > 1 + MAX_LISTED_LINES else ''})"


def corpus_location(path: str | Path) -> tuple[Path, str]:
    """(the file or folder to read, its format) for a run folder, dataset folder, parquet or JSONL path."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "not found; expected a run folder, a saved dataset folder, a .parquet or a .jsonl file")
    if path.is_dir():
        if (path / "synthesized" / "dataset").is_dir():  # a run folder: curate what it synthesized
            return path / "synthesized" / "dataset", "disk"
        if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
            return path, "disk"
        raise InputError(path, "a folder that is neither a run folder (no synthesized/dataset) nor a saved dataset "
                               "(no dataset_info.json or dataset_dict.json)")
    if path.suffix in (".jsonl", ".json"):
        return path, "jsonl"
    if path.suffix == ".parquet":
        return path, "parquet"
    raise InputError(path, f"cannot tell the format from '{path.suffix}'; expected .jsonl, .parquet, a saved dataset "
                           "folder or a run folder")


def load_corpus(path: str | Path) -> list[Record]:
    """Every row of the corpus at `path` as a Record; the first bad row raises InputError with its line."""
    where, fmt = corpus_location(path)
    if fmt != "disk" and where.stat().st_size == 0 or fmt == "jsonl" and not where.read_bytes().strip():
        raise InputError(where, "the file is empty; expected records with at least `prompt` and `domain`")
    rows = _dataset_rows(where) if fmt == "disk" else _file_rows(where, fmt)
    if not rows:
        raise InputError(where, "no records; expected records with at least `prompt` and `domain`")
    records, bad = [], []
    for line, row in rows:
        try:
            records.append(_row_to_record(row))
        except ValueError as exc:
            bad.append((line, str(exc)))
    if bad:
        if fmt == "jsonl":
            raise InputError(where, bad[0][1] + _more(bad), line=bad[0][0])
        raise InputError(where, f"row {bad[0][0]}: {bad[0][1]}" + _more(bad))
    return records
