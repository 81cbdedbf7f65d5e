"""Seed prompts: the file shipped with the package, and an importer for JSONL, CSV, parquet, a saved
dataset folder or a Hub dataset id (only when the user names one). Every bad row is reported with its
file and line and set aside; a source with no valid row stops the run before any model loads."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import pyarrow.parquet as pq

from psychosafe.core.config import BUILTIN_SEEDS, SEED_FIELDS, SeedSource
from psychosafe.errors import InputError
from psychosafe.schemas import Record, Rejected, Source, default_taxonomy, record_id
from psychosafe.schemas.resources import LOCALE_PATTERN

BUILTIN_SEED_FILE = Path(__file__).with_name("data") / "seeds.jsonl"
BUILTIN_SEED_LICENSE = "Apache-2.0"


@dataclass
class SeedImport:
    records: list[Record] = field(default_factory=list)
    problems: list[Rejected] = field(default_factory=list)


def read_rows(src: SeedSource) -> tuple[str, list[tuple[int, dict | None, str | None]]]:
    """(display name, [(line, row or None, problem or None)]) for one source: the project's one reader of JSONL, CSV,
    parquet, saved dataset folders and Hub datasets (seeds, `psychosafe curate`'s input, eval prompt sets)."""
    path = BUILTIN_SEED_FILE if src.path == BUILTIN_SEEDS else Path(src.path)
    fmt = src.format
    if fmt == "auto":
        if path.is_dir():
            fmt = "disk"
        elif path.suffix in (".jsonl", ".json"):
            fmt = "jsonl"
        elif path.suffix in (".csv", ".tsv"):
            fmt = "csv"
        elif path.suffix == ".parquet":
            fmt = "parquet"
        elif not path.exists() and re.fullmatch(r"[\w.-]+/[\w.-]+", src.path):
            raise InputError(src.path, "no such file; to import a Hub dataset, say `format: hub` in the seed source")
        else:
            raise InputError(path, "cannot tell the format; expected .jsonl, .csv, .parquet, a saved dataset folder, "
                                   "or `format:` in the seed source")
    if fmt == "hub":
        ds = datasets.load_dataset(src.path, split=src.split)
        return src.path, [(i + 1, dict(row), None) for i, row in enumerate(ds)]
    if not path.exists():
        raise InputError(path, "file not found")
    if fmt == "disk":
        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            if src.split not in ds:
                raise InputError(path, f"no split '{src.split}'; it has {list(ds)}", where="split")
            ds = ds[src.split]
        return str(path), [(i + 1, dict(row), None) for i, row in enumerate(ds)]
    if fmt == "parquet":
        table = pq.read_table(path)
        return str(path), [(i + 1, row, None) for i, row in enumerate(table.to_pylist())]
    raw = path.read_bytes()
    if not raw.strip():
        raise InputError(path, "the file is empty; expected seed rows with at least a `prompt`")
    lines = raw.split(b"\n")
    if fmt == "jsonl":
        out = []
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError as exc:
                out.append((n, None, f"not UTF-8 text (byte {exc.start})"))
                continue
            except json.JSONDecodeError as exc:
                out.append((n, None, f"not valid JSON ({exc.msg})"))
                continue
            out.append((n, row, None) if isinstance(row, dict) else (n, None, "expected a JSON object"))
        return str(path), out
    # csv: decode line by line so that one bad line does not lose the file
    header, out = None, []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8-sig" if n == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            if header is None:
                raise InputError(path, f"the header line is not UTF-8 text (byte {exc.start})", line=n) from None
            out.append((n, None, f"not UTF-8 text (byte {exc.start})"))
            continue
        values = next(csv.reader(io.StringIO(text), delimiter="\t" if path.suffix == ".tsv" else ","))
        if header is None:
            header = values
            continue
        out.append((n, dict(zip(header, values)), None) if len(values) == len(header)
                   else (n, None, f"expected {len(header)} columns, got {len(values)}"))
    return str(path), out


_rows = read_rows  # the name eval/tasks.py still imports; new code uses read_rows


def _to_record(row: dict, src: SeedSource, name: str) -> Record:
    """One seed row -> a Record, or ValueError saying what is wrong with it."""
    taxonomy = default_taxonomy()
    get = {f: row.get(src.columns.get(f, f)) for f in SEED_FIELDS}
    values = {f: (str(v).strip() if v not in (None, "") else src.defaults.get(f)) for f, v in get.items()}
    prompt = values["prompt"]
    if not prompt:
        raise ValueError(f"missing `{src.columns.get('prompt', 'prompt')}` (the prompt text)")
    domains = [d.strip() for d in re.split(r"[,;|]", values["domain"] or "") if d.strip()]
    if not domains:
        raise ValueError(f"missing `{src.columns.get('domain', 'domain')}`; expected one of {taxonomy.domain_ids()}")
    unknown = [d for d in domains if d not in taxonomy.domain_ids()]
    if unknown:
        raise ValueError(f"unknown domain {unknown[0]!r}; expected one of {taxonomy.domain_ids()}")
    domain = taxonomy.highest_risk(domains)  # several domains: the highest-risk one (suicide first)
    label = values["label"] or "harmful"
    if label not in ("harmful", "benign"):
        raise ValueError(f"label {label!r}: expected 'harmful' or 'benign'")
    category = values["category"]
    if category and category not in taxonomy.domain(domain).category_ids():
        raise ValueError(f"category {category!r} is not in domain {domain}; expected one of "
                         f"{taxonomy.domain(domain).category_ids()}")
    intent = values["intent"]
    if intent and intent not in taxonomy.domain(domain).intents:
        raise ValueError(f"intent {intent!r}: expected one of {taxonomy.domain(domain).intents}")
    locale = values["locale"] or "en-US"
    if not re.fullmatch(LOCALE_PATTERN, locale):
        raise ValueError(f"locale {locale!r}: expected a tag like en-US")
    builtin = src.path == BUILTIN_SEEDS
    return Record(
        id=record_id(prompt, domain), prompt=prompt, label=label, domain=domain, category=category,
        intent=intent, locale=locale,
        source=Source(kind="seed" if builtin else "imported",
                      dataset=src.name or ("psychosafe/seeds" if builtin else name),
                      license=src.license or (BUILTIN_SEED_LICENSE if builtin else None),
                      original_id=values["original_id"]),
    )


def import_seeds(sources: list[SeedSource]) -> SeedImport:
    """Read every source; bad rows become `Rejected(stage='seeds')` naming file and line."""
    result = SeedImport()
    for src in sources:
        name, rows = read_rows(src)
        valid = 0
        for line, row, problem in rows:
            if problem is None:
                try:
                    result.records.append(_to_record(row, src, name))
                    valid += 1
                    continue
                except ValueError as exc:
                    problem = str(exc)
            result.problems.append(Rejected(stage="seeds", code="bad_input_row", reason=f"{name}:{line}: {problem}",
                                            row=json.dumps(row, ensure_ascii=False, default=str) if row else None))
        if valid == 0:
            first = "; ".join(p.reason for p in result.problems[-3:]) or "no rows"
            raise InputError(name, f"no valid seed row ({first})")
    return result
