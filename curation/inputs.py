"""Read any corpus into records: a run folder, a saved dataset folder, a parquet, JSONL, JSON-array or CSV file.

Without a mapping, rows are records: they need a `prompt` and a `domain`; every other record field is optional (a
missing `id` is derived from the prompt and domain, a missing `label` is `harmful`). With a mapping (a `SeedSource`
with a preset, columns, value maps, defaults or a license: `--preset`, `--map`), rows go through the importer
(pipelines/seeds.py) as they are, keeping each row's provenance. A bad row or mapping stops the stage before any
model loads, naming the file, the line or column and what was expected. A row without a locale takes the default one
(the user's, else en-US) and is counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import datasets

from psychosafe.core.config import SeedSource
from psychosafe.errors import InputError
from psychosafe.pipelines.seeds import DEFAULT_LOCALE, import_rows, read_rows
from psychosafe.schemas import Record, Rejected, default_taxonomy, record_id, row_to_record

MAX_LISTED_LINES = 5


@dataclass
class CorpusImport:
    """What an import read: the records, the rows out of scope (a value mapped to nothing), and how many records took
    the default locale."""

    where: Path
    records: list[Record] = field(default_factory=list)
    out_of_scope: list[Rejected] = field(default_factory=list)
    without_locale: int = 0
    default_locale: str = DEFAULT_LOCALE

    def counts(self) -> dict:
        return {"path": str(self.where), "records": len(self.records), "out_of_scope": len(self.out_of_scope),
                "without_locale": self.without_locale, "default_locale": self.default_locale}


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
        return path, "json" if path.read_bytes().lstrip()[:1] == b"[" else "jsonl"
    if path.suffix in (".parquet", ".csv"):
        return path, path.suffix[1:]
    raise InputError(path, f"cannot tell the format from '{path.suffix}'; expected .jsonl, .json, .csv, .parquet, a "
                           "saved dataset folder or a run folder")


def is_mapped(source: SeedSource | None) -> bool:
    """Whether the rows go through the importer (a preset, columns, value maps or a license) rather than being
    records already."""
    return source is not None and bool(source.preset or source.columns or source.values or source.license or
                                       set(source.defaults) - {"locale"})


def import_corpus(path: str | Path, source: SeedSource | None = None) -> CorpusImport:
    """The corpus at `path`, read as records or through `source`'s mapping; `source.defaults["locale"]` is the
    locale of rows without one (default en-US). Bad input raises InputError naming the file and the line or column."""
    where, fmt = corpus_location(path)
    locale = (source.defaults.get("locale") if source else None) or DEFAULT_LOCALE
    if is_mapped(source):
        if fmt == "disk" and where != Path(path):  # a run folder holds records, not a corpus to map
            raise InputError(path, "a run folder's records need no mapping; drop --preset / --map")
        spec = source.model_copy(update={"path": str(where), "format": fmt,
                                         "defaults": source.defaults | {"locale": locale}})
        name, imported = import_rows(spec, stage="import")
        bad = [p for p in imported.problems if p.code == "bad_input_row"]
        if bad:
            first = bad[0].reason.removeprefix(f"{name}:")
            line, _, problem = first.partition(": ")
            raise InputError(name, problem + _more([(p.reason.removeprefix(f"{name}:").split(":")[0], None)
                                                    for p in bad]), line=int(line) if line.isdigit() else None)
        if not imported.records:
            raise InputError(name, f"no record in scope ({len(imported.problems)} row(s) out of scope: "
                                   f"{imported.problems[0].reason if imported.problems else 'no rows'})")
        return CorpusImport(where, imported.records, imported.problems, imported.without_locale, locale)
    if fmt != "disk" and not where.read_bytes().strip():
        raise InputError(where, "the file is empty; expected records with at least `prompt` and `domain`")
    rows = _dataset_rows(where) if fmt == "disk" else _file_rows(where, fmt)
    without = sum(1 for _, row in rows if not row.get("locale"))
    records = _records(where, fmt, [(line, row if row.get("locale") else row | {"locale": locale})
                                    for line, row in rows])
    return CorpusImport(where, records, without_locale=without, default_locale=locale)


def load_corpus(path: str | Path, source: SeedSource | None = None) -> list[Record]:
    """Every row of the corpus at `path` as a Record; the first bad row raises InputError with its line."""
    return import_corpus(path, source).records


def _records(where: Path, fmt: str, rows: list[tuple[int, dict]]) -> list[Record]:
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
