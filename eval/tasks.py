"""Prompt sets to evaluate on: XSTest and HarmBench (package data), a local SORRY-Bench copy, a run's curated split,
or any prompt file. Each loader returns EvalRecords with `benchmark` and `group` set; `limit` keeps the first N per
group (per category and prompt style for SORRY-Bench) for a quick look. A conversation (a run's, or a row with
`messages`) becomes its user turns, which the model under test answers one by one. Bad input fails here, naming the
file, the line and the field (and a conversation's turn), before any model loads."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

from pydantic import ValidationError

from psychosafe.core.config import SeedSource
from psychosafe.errors import InputError
from psychosafe.pipelines.seeds import read_rows
from psychosafe.schemas import Message, Record, Source, default_taxonomy, record_id, row_to_record
from psychosafe.schemas.conversations import ConversationError, conversation_of_row

from .conversations import as_single_turn
from .records import EvalRecord

DATA_DIR = Path(__file__).with_name("data")
XSTEST_FILE = DATA_DIR / "xstest" / "xstest_prompts.csv"
XSTEST_LICENSE = "CC-BY-4.0"
HARMBENCH_FILE = DATA_DIR / "harmbench" / "harmbench_behaviors_text_all.csv"
HARMBENCH_LICENSE = "MIT"
SORRY_BENCH_FIELDS = ("question_id", "category", "turns", "prompt_style")


def first_per_group(records: list[EvalRecord], limit: int | None) -> list[EvalRecord]:
    """The first `limit` records of each (group, style), in file order."""
    if limit is None:
        return records
    seen: Counter = Counter()
    out = []
    for r in records:
        key = (r.group, r.style)
        if seen[key] < limit:
            seen[key] += 1
            out.append(r)
    return out


def load_xstest(limit: int | None = None) -> list[EvalRecord]:
    """The 450 XSTest prompts: 250 safe (label benign) over 10 types, 200 unsafe (label harmful) over 8."""
    with XSTEST_FILE.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    records = [EvalRecord(id=f"xstest-{row['id']}", prompt=row["prompt"],
                          label="benign" if row["label"] == "safe" else "harmful", benchmark="xstest",
                          group=row["type"], category=row["type"],
                          source=Source(kind="imported", dataset="xstest", license=XSTEST_LICENSE,
                                        original_id=row["id"]))
               for row in rows]
    return first_per_group(records, limit)


def load_harmbench(limit: int | None = None) -> list[EvalRecord]:
    """HarmBench's 400 text behaviours (label harmful), grouped by SemanticCategory. A contextual behaviour's prompt
    is its context, then the request, as HarmBench's own evaluation lays it out."""
    name, rows = read_rows(SeedSource(path=str(HARMBENCH_FILE), format="csv"))
    records = []
    for line, row, problem in rows:
        if problem:
            raise InputError(name, problem, line=line)
        context = (row.get("ContextString") or "").strip()
        prompt = f"{context}\n\n---\n\n{row['Behavior']}" if context else row["Behavior"]
        records.append(EvalRecord(id=f"harmbench-{row['BehaviorID']}", prompt=prompt, label="harmful",
                                  benchmark="harmbench", group=row["SemanticCategory"],
                                  category=row["SemanticCategory"], style=row["FunctionalCategory"],
                                  source=Source(kind="imported", dataset="harmbench", license=HARMBENCH_LICENSE,
                                                original_id=row["BehaviorID"])))
    return first_per_group(records, limit)


def _sorry_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".jsonl", ".json", ".csv", ".parquet"))
        if files:
            return files
        raise InputError(path, "no .jsonl, .json, .csv or .parquet file in this folder")
    raise InputError(path, "not found; expected a local copy of SORRY-Bench (a question.jsonl file or its folder)")


def load_sorry_bench(path: str | Path, limit: int | None = None,
                     styles: list[str] | None = None) -> list[EvalRecord]:
    """A local copy of SORRY-Bench in its published layout: rows of `question_id`, `category`, `turns` (a list
    holding the one user turn) and `prompt_style` ("base" or a mutation), in one file or a folder of files
    (one per style). `styles` keeps only those prompt styles."""
    records, seen_ids = [], set()
    for file in _sorry_files(Path(path)):
        name, rows = read_rows(SeedSource(path=str(file), format="jsonl" if file.suffix == ".json" else "auto"))
        for line, row, problem in rows:
            where = f"{name}:{line}"
            if problem:
                raise InputError(name, problem, line=line)
            missing = [f for f in SORRY_BENCH_FIELDS if f not in row or row[f] in (None, "")]
            if missing:
                raise InputError(name, f"missing {missing}; SORRY-Bench rows have {list(SORRY_BENCH_FIELDS)}",
                                 line=line)
            turns = row["turns"]
            if isinstance(turns, str):  # CSV and some exports keep the list as JSON text
                try:
                    turns = json.loads(turns)
                except json.JSONDecodeError:
                    turns = [turns]
            if not (isinstance(turns, list) and len(turns) == 1 and isinstance(turns[0], str) and turns[0].strip()):
                raise InputError(name, f"expected a list with one non-empty user turn, got {str(row['turns'])[:60]!r}",
                                 where="turns", line=line)
            style = str(row["prompt_style"])
            if styles and style not in styles:
                continue
            rid = f"sorry-{row['question_id']}-{style}"
            if rid in seen_ids:
                raise InputError(name, f"question_id {row['question_id']} appears twice with prompt_style {style} "
                                       f"({where})", where="question_id", line=line)
            seen_ids.add(rid)
            records.append(EvalRecord(id=rid, prompt=turns[0], label="harmful", benchmark="sorry-bench",
                                      group=str(row["category"]), category=str(row["category"]), style=style,
                                      source=Source(kind="imported", dataset="sorry-bench",
                                                    original_id=str(row["question_id"]))))
    if not records:
        raise InputError(path, f"no SORRY-Bench rows{f' with prompt_style in {styles}' if styles else ''}")
    return first_per_group(records, limit)


def from_record(record: Record, benchmark: str) -> EvalRecord:
    """A corpus record as an eval prompt (its response, scores and checks cleared); a conversation as its user turns
    alone: the model under test writes every answer itself."""
    data = record.model_dump(exclude={"response", "scores", "checks", "critique", "baseline_response", "resources",
                                      "generation", "review", "messages"})
    return EvalRecord(**data, earlier_turns=_user_turns(record.user_turns[:-1]), benchmark=benchmark,
                      group=record.domain)


def _user_turns(texts: list[str]) -> list[Message]:
    return [Message(role="user", content=t) for t in texts]


def load_prompt_file(path: str | Path, *, split: str = "validation", limit: int | None = None) -> list[EvalRecord]:
    """Prompts from a JSONL/CSV/parquet file or a saved dataset folder (a run's `curated/` takes `split`).
    Rows need `prompt`, or `messages` (a conversation: a list of {role, content} turns, or that list as JSON text;
    its user turns are asked, its assistant turns, if any, are left for the model under test to write), with
    `pattern` and `risk_turn` optional; `label` (harmful/benign, default harmful, or the pattern's), `domain`,
    `group`, `id` and `locale` are optional. Full corpus records (a curated split) keep their domain, strategy and
    locale, and a conversation its pattern and risk turn."""
    path = Path(path)
    name, rows = read_rows(SeedSource(path=str(path), split=split))
    taxonomy = default_taxonomy()
    records = []
    for line, row, problem in rows:
        if problem:
            raise InputError(name, problem, line=line)
        try:
            conversation = conversation_of_row(row, user_turns_alone=True)
        except ConversationError as exc:
            raise InputError(name, str(exc), line=line) from None
        users = [t.content for t in conversation.get("messages", []) if t.role == "user"]
        prompt = users[-1] if users else str(row.get("prompt") or "").strip()
        if not prompt:
            raise InputError(name, "missing `prompt` (the prompt text) or `messages` (a conversation)", line=line)
        if "response" in row and "scores" in row:  # a corpus record
            try:
                records.append(from_record(row_to_record(row), benchmark=path.name))
            except ValueError as exc:
                raise InputError(name, str(exc), line=line) from None
            continue
        pattern = conversation.get("pattern")
        label = row.get("label") or (taxonomy.pattern(pattern).label if pattern else "harmful")
        if label not in ("harmful", "benign"):
            raise InputError(name, f"expected 'harmful' or 'benign', got {label!r}", where="label", line=line)
        domain = row.get("domain") or None
        if domain is not None and domain not in taxonomy.domain_ids():
            raise InputError(name, f"unknown domain {domain!r}; expected one of {taxonomy.domain_ids()} or empty",
                             where="domain", line=line)
        try:
            records.append(EvalRecord(
                id=str(row.get("id") or record_id(prompt, domain or "", users[:-1])), prompt=prompt, label=label,
                domain=domain, earlier_turns=_user_turns(users[:-1]), pattern=pattern,
                risk_turn=conversation.get("risk_turn"), locale=row.get("locale") or "en-US", benchmark=path.stem,
                group=str(row.get("group") or domain or label),
                source=Source(kind="imported", dataset=str(path),
                              original_id=str(row["id"]) if row.get("id") else None)))
        except ValidationError as exc:  # a pattern of the other label
            raise InputError(name, "; ".join(e["msg"] for e in exc.errors()), line=line) from None
    ids = Counter(r.id for r in records)
    if dup := [i for i, n in ids.items() if n > 1]:
        raise InputError(name, f"{len(dup)} duplicate prompt id(s), e.g. {dup[0]!r}; each prompt must appear once")
    if not records:
        raise InputError(name, "no prompts")
    return first_per_group(records, limit)


def load_prompt_set(spec: str, *, split: str = "validation", limit: int | None = None,
                    styles: list[str] | None = None, single_turn: bool = False) -> list[EvalRecord]:
    """`xstest`, `harmbench`, `sorry-bench=PATH`, or a prompt file / dataset folder (see load_prompt_file).
    `single_turn`: each conversation as its last user turn alone (eval/conversations.py), the single-turn side of a
    single- vs multi-turn comparison."""
    if spec == "xstest":
        return load_xstest(limit)
    if spec == "harmbench":
        return load_harmbench(limit)
    if spec.startswith("sorry-bench="):
        return load_sorry_bench(spec.split("=", 1)[1], limit, styles)
    records = load_prompt_file(spec, split=split, limit=limit)
    return as_single_turn(records) if single_turn else records
