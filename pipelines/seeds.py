"""Seed prompts and imported corpora: the file shipped with the package, and an importer for JSONL, JSON arrays, CSV,
parquet, a saved dataset folder or a Hub dataset id (only when the user names one).

A source says how its rows become records: `columns` (record field -> the file's column), `values` (value maps:
the published PsychoSafe corpus's "crimes (sexual)" -> sexual_crimes), `defaults` and `license`, or a named `preset`
of configs/import_presets.yaml that gives all of them. A mapping that cannot work (a mapped column the file lacks, a
value no map covers) stops the import naming the file, the column and what was expected, before any model loads;
a bad row is reported with its file and line and set aside; a row whose value maps to nothing is out of scope
(set aside, counted)."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import pyarrow.parquet as pq

from psychosafe.core.config import ANY_VALUE, BUILTIN_SEEDS, IMPORT_FIELDS, SEED_FIELDS, SeedSource  # noqa: F401
from psychosafe.errors import InputError
from psychosafe.schemas import UNKNOWN_LICENSE, Record, Rejected, Source, default_taxonomy, record_id
from psychosafe.schemas.conversations import conversation_of_row, split_turns
from psychosafe.schemas.resources import LOCALE_PATTERN

BUILTIN_SEED_FILE = Path(__file__).with_name("data") / "seeds.jsonl"
BUILTIN_SEED_LICENSE = "Apache-2.0"
DEFAULT_LOCALE = "en-US"  # a row without a locale, when the user names none
MAX_LISTED_VALUES = 10


class OutOfScope(ValueError):
    """A row whose value a value map sends to nothing (a category outside the five domains)."""


@dataclass
class SeedImport:
    records: list[Record] = field(default_factory=list)
    problems: list[Rejected] = field(default_factory=list)  # bad rows (code bad_input_row) and out-of-scope ones
    without_locale: int = 0  # records that took the default locale

    def counts(self) -> dict:
        return {"records": len(self.records), "bad_rows": sum(p.code == "bad_input_row" for p in self.problems),
                "out_of_scope": sum(p.code == "out_of_scope" for p in self.problems),
                "without_locale": self.without_locale}


def read_rows(src: SeedSource) -> tuple[str, list[tuple[int, dict | None, str | None]]]:
    """(display name, [(line, row or None, problem or None)]) for one source: the project's one reader of JSONL, CSV,
    parquet, saved dataset folders and Hub datasets (seeds, `psychosafe curate`'s input, eval prompt sets)."""
    path = BUILTIN_SEED_FILE if src.path == BUILTIN_SEEDS else Path(src.path)
    fmt = src.format
    if fmt == "auto":
        if path.is_dir():
            fmt = "disk"
        elif path.suffix == ".json" and path.is_file() and path.read_bytes().lstrip()[:1] == b"[":
            fmt = "json"
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
    if fmt == "json":  # a JSON array of objects: a row's "line" is its place in the array
        try:
            items = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(path, f"not a JSON array ({exc})") from None
        if not isinstance(items, list):
            raise InputError(path, f"expected a JSON array of objects, got a {type(items).__name__}")
        return str(path), [(n, row, None) if isinstance(row, dict) else (n, None, "expected a JSON object")
                           for n, row in enumerate(items, start=1)]
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
    delimiter = "\t" if path.suffix == ".tsv" else ","
    try:  # a quoted field may hold line breaks (HarmBench's ContextString): read the file as one CSV text
        return str(path), _csv_rows(raw.decode("utf-8-sig"), delimiter)
    except UnicodeDecodeError:
        pass
    # not UTF-8 throughout: decode line by line so that one bad line does not lose the file
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
        values = next(csv.reader(io.StringIO(text), delimiter=delimiter))
        if header is None:
            header = values
            continue
        out.append((n, dict(zip(header, values)), None) if len(values) == len(header)
                   else (n, None, f"expected {len(header)} columns, got {len(values)}"))
    return str(path), out


def _csv_rows(text: str, delimiter: str) -> list[tuple[int, dict | None, str | None]]:
    """Rows of a CSV text, each numbered by the line it starts on."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header, out, line = None, [], 1
    for values in reader:
        start, line = line, reader.line_num + 1
        if not any(v.strip() for v in values):
            continue
        if header is None:
            header = values
            continue
        out.append((start, dict(zip(header, values)), None) if len(values) == len(header)
                   else (start, None, f"expected {len(header)} columns, got {len(values)}"))
    return out


_rows = read_rows  # the name eval/tasks.py still imports; new code uses read_rows


def check_mapping(src: SeedSource, name: str, rows: list[tuple[int, dict | None, str | None]]) -> None:
    """The mapping fits the file, or InputError naming the file, the column and what was expected: every mapped
    column exists, and every value of a mapped column is covered by its value map."""
    present = {k for _, row, _ in rows if row for k in row}
    missing = {f: c for f, c in src.columns.items() if c not in present}
    if "prompt" not in src.columns and "prompt" not in present and "messages" not in present:
        missing["prompt"] = "prompt"
    if missing and present:
        fields = ", ".join(f"{c!r} (for {f})" for f, c in missing.items())
        raise InputError(name, f"no column {fields}; the file's columns are {sorted(present)} (map one with "
                               "--map FIELD=COLUMN or `columns:`)", where="columns")
    for field_name, mapping in src.values.items():
        column = src.column(field_name)
        unmapped: dict[str, int] = {}
        for line, row, _ in rows:
            value = cell_text(row.get(column)) if row else None
            if value is not None and _mapped(mapping, value) is _UNMAPPED:
                unmapped.setdefault(value, line)
        if unmapped:
            shown = list(unmapped)[:MAX_LISTED_VALUES]
            first, expected = unmapped[shown[0]], sorted(k for k in mapping if k != ANY_VALUE)
            raise InputError(name, f"unknown value(s) {shown}{' ...' if len(unmapped) > len(shown) else ''} "
                                   f"(first on line {first}); expected one of {expected}"
                                   f" (values.{field_name} maps them to {field_name}; add the missing ones, or "
                                   f"\"{ANY_VALUE}\": null to leave the rest out)", where=f"column {column!r}")


_UNMAPPED = object()


def _mapped(mapping: dict[str, str | None], value: str):
    """A value through its map: the value of the record, None (out of scope), or _UNMAPPED."""
    if value in mapping:
        return mapping[value]
    folded = {k.casefold(): v for k, v in mapping.items()}
    if value.casefold() in folded:
        return folded[value.casefold()]
    return mapping[ANY_VALUE] if ANY_VALUE in mapping else _UNMAPPED


def cell_text(value) -> str | None:
    """A cell as text: a one-item list (SORRY-Bench's `turns`) is its item; empty is None."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return str(value).strip()


def row_values(row: dict, src: SeedSource) -> dict[str, str | None]:
    """A row's record fields through the source's columns, value maps and defaults (the mapping was checked).
    Raises OutOfScope when a value map sends the row to nothing."""
    values = {}
    for f in IMPORT_FIELDS:
        column = src.column(f)
        value = cell_text(row.get(column)) if column else None
        if value is not None and f in src.values:
            mapped = _mapped(src.values[f], value)
            if mapped is None:
                raise OutOfScope(f"{column} {value!r} is outside the five domains (values.{f} maps it to "
                                 "nothing)")
            value = mapped
        values[f] = value if value is not None else src.defaults.get(f)
    return values


def _to_record(row: dict, src: SeedSource, name: str) -> Record:
    """One row -> a Record, or ValueError saying what is wrong with it (OutOfScope: a value mapped to nothing)."""
    taxonomy = default_taxonomy()
    values = row_values(row, src)
    conversation = conversation_of_row(row)  # a row with `messages`: every turn checked, a bad one named
    earlier, last_user, last_answer = split_turns(conversation["messages"]) if conversation else ([], None, "")
    prompt = values["prompt"] or last_user
    if not prompt:
        raise ValueError(f"missing `{src.column('prompt')}` (the prompt text)")
    domains = [d.strip() for d in re.split(r"[,;|]", values["domain"] or "") if d.strip()]
    if not domains:
        raise ValueError(f"missing `{src.column('domain')}`; expected one of {taxonomy.domain_ids()}")
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
    locale = values["locale"] or DEFAULT_LOCALE
    if not re.fullmatch(LOCALE_PATTERN, locale):
        raise ValueError(f"locale {locale!r}: expected a tag like en-US")
    builtin = src.path == BUILTIN_SEEDS
    corpus = src.name or ("psychosafe/seeds" if builtin else name)
    return Record(
        id=record_id(prompt, domain, [t.content for t in earlier if t.role == "user"]), prompt=prompt, label=label,
        domain=domain, category=category, intent=intent, locale=locale, response=values["response"] or last_answer,
        **conversation,
        source=Source(kind="seed" if builtin else "imported", dataset=values["dataset"] or corpus,
                      license=src.license or (BUILTIN_SEED_LICENSE if builtin else UNKNOWN_LICENSE),
                      original_id=values["original_id"], corpus=corpus, author=values["author"],
                      category=values["source_category"]),
    )


def import_rows(src: SeedSource, *, stage: str = "seeds") -> tuple[str, SeedImport]:
    """One source's rows as records; bad rows and out-of-scope ones become `Rejected(stage=stage)` naming file and
    line. A mapping that does not fit the file raises InputError (check_mapping)."""
    name, rows = read_rows(src)
    check_mapping(src, name, rows)
    result = SeedImport()
    for line, row, problem in rows:
        code = "bad_input_row"
        if problem is None:
            try:
                record = _to_record(row, src, name)
                result.records.append(record)
                result.without_locale += row_values(row, src.model_copy(update={"defaults": {}}))["locale"] is None
                continue
            except OutOfScope as exc:
                problem, code = str(exc), "out_of_scope"
            except ValueError as exc:
                problem = str(exc)
        result.problems.append(Rejected(stage=stage, code=code, reason=f"{name}:{line}: {problem}",
                                        row=json.dumps(row, ensure_ascii=False, default=str) if row else None))
    return name, result


def import_seeds(sources: list[SeedSource]) -> SeedImport:
    """Read every source; bad rows become `Rejected(stage='seeds')` naming file and line."""
    result = SeedImport()
    for src in sources:
        name, one = import_rows(src)
        result.records += one.records
        result.problems += one.problems
        result.without_locale += one.without_locale
        if not one.records:
            first = "; ".join(p.reason for p in one.problems[:3]) or "no rows"
            raise InputError(name, f"no valid seed row ({first})")
    return result
