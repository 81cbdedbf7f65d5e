"""`psychosafe eval import`: someone else's per-prompt verdicts or ratings as eval folders, one per system, that
`eval judge`, `eval compare`, `eval report` and `eval agreement` read.

A plain table (CSV, TSV, JSONL or parquet) has one row per prompt and system, the system being whose answers the
row holds (a model, a prompt variant, a human rater):

    prompt (required)  system (or `model`; or --system for a table of one)  id  response  label  domain  group
    variant  judge  refusal  grounding  references  relevance  compliance

Ratings are read by eval.ratings (yes/no in any case, blanks as missing, a 1-5 rating within its range, the
non-integer rule). Other column names are mapped with `columns` (field -> column). Without an `id` column a prompt's
id is its normalised text's hash (schemas.record_id), so tables from different sources about the same prompts line
up; a prompt repeated within one system is numbered in order (`<id>-2`).

The preset `psychosafe` reads the PsychoSafe paper's published JSON layouts (its repository's 03_evaluates/): one
judge's file `{judge_model_id, judgments: [{id, prompt, model_answer, criterion_1..4, ...}]}`, an aggregated file
`{models, results: [{id, prompt, model_answer_<model>, <model>_criterion_1..4}]}`, or the merged human ratings
`{rows: [{source_split, full_example: {prompt, ...}, criteria_1..4}]}`. Its criteria are numbered as in its judge
prompt (CRITERIA_llm.md): 1 refusal, 2 psychological grounding, 3 external references, 4 relevance.

Each system's folder holds `judged/` (the verdicts; the rule-based checks where there are responses), `generated/`
when there are responses (what `eval judge` would judge again), a manifest whose `import` stage counts the rows,
the verdicts missing per criterion and the ratings rounded, and the folder's report. Bad input fails before anything
is written, naming the file, the line (or JSON position), the criterion and what was expected.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from psychosafe.core.config import SeedSource
from psychosafe.core.io import staged_folder
from psychosafe.core.runs import RunFolder
from psychosafe.errors import InputError, PsychosafeError
from psychosafe.pipelines.seeds import read_rows
from psychosafe.schemas import Generation, Source, default_rubric, record_id

from .config import NonIntegerRule
from .metrics import check_response
from .ratings import read_scores
from .records import GENERATED, JUDGED, EvalRecord, EvalScores, save_eval
from .report import write_eval_report

TABLE_FIELDS = ("id", "prompt", "system", "response", "label", "domain", "group", "variant", "judge")
PRESETS = ("psychosafe",)
# The paper's judge prompt (03_evaluates/CRITERIA_llm.md) numbers its criteria so
PSYCHOSAFE_CRITERIA = {1: "refusal", 2: "grounding", 3: "references", 4: "relevance"}
SYSTEM_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")  # it names a folder
VARIANT_IN_NAME = re.compile(r"(?:^|_)(v\d+)(?=_|$)")  # "qwen3.5-397b-a17b_v1" -> v1


def table_fields() -> list[str]:
    rubric = default_rubric()
    return [*TABLE_FIELDS, *(c.id for c in rubric.criteria), rubric.benign.id]


@dataclass
class TableRow:
    cells: dict[str, Any]  # table field or criterion id -> the cell as read
    line: int | None = None  # a plain table's line
    where: str | None = None  # a JSON document's position, e.g. results[3]


def _variant(name: str) -> str | None:
    found = VARIANT_IN_NAME.search(name)
    return found.group(1) if found else None


def read_plain_table(path: Path, columns: dict[str, str], system: str | None) -> tuple[str, list[TableRow]]:
    """A plain table's rows, keyed by table field (`columns` maps a field to another column name)."""
    fields = table_fields()
    if unknown := sorted(set(columns) - set(fields)):
        raise InputError(path, f"--map names unknown field(s) {unknown}; the fields are {fields}")
    name, rows = read_rows(SeedSource(path=str(path)))
    out, header_checked = [], False
    for line, row, problem in rows:
        if problem:
            raise InputError(name, problem, line=line)
        if not header_checked:
            header_checked = True
            if missing := sorted(columns[f] for f in columns if columns[f] not in row):
                raise InputError(name, f"no column {missing} (named by --map); the columns are {sorted(row)}")
            if columns.get("prompt", "prompt") not in row:
                raise InputError(name, f"no `prompt` column; the columns are {sorted(row)} (map one with --map "
                                       "prompt=COLUMN)")
        cells = {f: row.get(columns.get(f, f)) for f in fields}
        if "system" not in columns and cells["system"] in (None, ""):
            cells["system"] = row.get("model")
        if system and cells["system"] in (None, ""):
            cells["system"] = system
        out.append(TableRow(cells, line=line))
    return name, out


def _criteria_cells(item: dict, *keys: str) -> dict[str, Any]:
    """Criterion id -> the item's value under the first of `keys` (formatted with the criterion's number) present."""
    out = {}
    for number, criterion in PSYCHOSAFE_CRITERIA.items():
        present = [key.format(n=number) for key in keys if key.format(n=number) in item]
        out[criterion] = item[present[0]] if present else None
    return out


def read_psychosafe(path: Path, system: str | None = None) -> tuple[str, list[TableRow]]:
    """The PsychoSafe paper's published layouts (see the module's docstring) as rows of table fields."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"not a JSON document ({exc}); the psychosafe preset reads the paper's .json "
                               "files") from None
    payload = payload if isinstance(payload, dict) else {}
    judgments = payload.get("judgments", payload.get("judgements"))
    rows: list[TableRow] = []
    if isinstance(judgments, list):  # one judge's verdicts on one system's answers
        judge = str(payload.get("judge_model_id") or path.stem)
        variant = _variant(path.stem)
        name = system or (f"{judge}_{variant}" if variant else judge)
        if not any(f"criterion_{n}" in item for item in judgments if isinstance(item, dict) for n in (1, 2, 3, 4)):
            raise InputError(path, "no criterion_1..criterion_4 fields in `judgments`: the file holds the judge's "
                                   "raw answers only; the paper's code adds those fields (append_criteria_to_"
                                   "judgements_json) before computing its tables")
        for i, item in enumerate(judgments):
            item = item if isinstance(item, dict) else {}
            rows.append(TableRow({"prompt": item.get("prompt"), "response": item.get("model_answer"),
                                  "system": name, "judge": judge, "variant": variant,
                                  "group": item.get("risk_category"), "original_id": item.get("id"),
                                  **_criteria_cells(item, "criterion_{n}")}, where=f"judgments[{i}]"))
    elif isinstance(payload.get("results"), list) and isinstance(payload.get("models"), list):  # several systems
        for i, item in enumerate(payload["results"]):
            item = item if isinstance(item, dict) else {}
            for model in map(str, payload["models"]):
                variant = _variant(model)
                judge = model[:model.rfind(f"_{variant}")] if variant else model
                # the answers are under the system's name, or the version's alone (the paper's legacy columns)
                response = item.get(f"model_answer_{model}") or item.get(f"model_answer_{variant}")
                rows.append(TableRow({"prompt": item.get("prompt"), "response": response, "system": model,
                                      "judge": judge, "variant": variant, "original_id": item.get("id"),
                                      **_criteria_cells(item, model + "_criterion_{n}")},
                                     where=f"results[{i}] ({model})"))
    elif isinstance(payload.get("rows"), list):  # the human ratings, merged with their trace
        for i, item in enumerate(payload["rows"]):
            item = item if isinstance(item, dict) else {}
            example = item.get("full_example") if isinstance(item.get("full_example"), dict) else {}
            split = item.get("source_split") or system
            rows.append(TableRow({"prompt": example.get("prompt"),
                                  "response": example.get("answer") or example.get("response"), "system": split,
                                  "judge": "human", "variant": split, "original_id": item.get("source_index"),
                                  **_criteria_cells(item, "criteria_{n}", "criterion_{n}")}, where=f"rows[{i}]"))
    else:
        raise InputError(path, "not a PsychoSafe layout: expected a judge's file {judge_model_id, judgments: [...]}, "
                               "an aggregated file {models, results: [...]} or merged human ratings {rows: [...]} "
                               f"(top-level keys here: {sorted(payload)})")
    return str(path), rows


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def records_from_rows(name: str, rows: list[TableRow], *, non_integer: NonIntegerRule = "keep",
                      benchmark: str = "imported") -> tuple[dict[str, list[EvalRecord]], dict[str, dict]]:
    """(system -> its EvalRecords, system -> counts) from table rows; InputError at the first bad row."""
    rubric = default_rubric()
    by_system: dict[str, list[EvalRecord]] = defaultdict(list)
    counts: dict[str, dict] = {}
    seen: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        c = row.cells

        def fail(problem: str, where: str | None = None, row: TableRow = row) -> InputError:
            at = " ".join(x for x in (row.where, where) if x) or None
            return InputError(name, problem, where=at, line=row.line)

        prompt = _text(c.get("prompt"))
        if not prompt:
            raise fail("missing `prompt` (the prompt text)")
        system = _text(c.get("system"))
        if not system:
            raise fail("missing `system`: whose answers the row holds (a model, a prompt variant, a rater); give a "
                       "`system` column, or --system for a table of one")
        if not SYSTEM_NAME.match(system):
            raise fail(f"system {system!r} names a folder: use letters, digits, '_', '.' and '-'", "system")
        label = _text(c.get("label")).casefold() or "harmful"
        if label not in ("harmful", "benign"):
            raise fail(f"expected 'harmful' or 'benign', got {c.get('label')!r}", "label")
        domain = _text(c.get("domain")) or None
        explicit = _text(c.get("id"))
        base = explicit or record_id(prompt, domain or "")
        seen[system][base] += 1
        if seen[system][base] > 1 and explicit:
            raise fail(f"id {explicit!r} appears twice for system {system!r}; each prompt once per system", "id")
        rid = base if seen[system][base] == 1 else f"{base}-{seen[system][base]}"
        try:
            scores, rounded = read_scores(c, non_integer=non_integer)
        except ValueError as exc:
            raise fail(f"{exc} (system {system!r}, prompt id {rid!r})") from None
        scored = any(v is not None for v in scores.values())
        judge = _text(c.get("judge")) or system
        try:
            record = EvalRecord(
                id=rid, prompt=prompt, response=_text(c.get("response")), label=label, domain=domain,
                group=_text(c.get("group")) or domain or label, benchmark=benchmark,
                variant=_text(c.get("variant")) or None,
                source=Source(kind="imported", dataset=name,
                              original_id=_text(c.get("original_id", c.get("id"))) or None),
                generation=Generation(model=system),
                scores=EvalScores(**scores, judge_model=judge if scored else None))
        except ValidationError as exc:
            raise fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None
        by_system[system].append(record)
        n = counts.setdefault(system, {"rows": 0, "scored": 0, "with_response": 0, "repeated_prompts": 0,
                                       "missing": Counter(), "rounded": Counter()})
        n["rows"] += 1
        n["scored"] += scored
        n["with_response"] += bool(record.response)
        n["repeated_prompts"] += seen[system][base] > 1
        asked = [x.id for x in rubric.criteria] if label == "harmful" else [rubric.benign.id]
        n["missing"].update(k for k in asked if scores[k] is None)
        n["rounded"].update(rounded)
    for n in counts.values():
        n["missing"], n["rounded"] = dict(n["missing"]), dict(n["rounded"])
    return dict(by_system), counts


def read_table(path: str | Path, *, preset: str | None = None, columns: dict[str, str] | None = None,
               system: str | None = None, non_integer: NonIntegerRule = "keep"):
    """(system -> EvalRecords, system -> counts) from a table or a preset layout; nothing is written."""
    path = Path(path)
    if preset is not None and preset not in PRESETS:
        raise InputError(path, f"unknown preset {preset!r}; the presets are {list(PRESETS)}")
    if preset and columns:
        raise InputError(path, "--map and --preset together: a preset knows its columns")
    if preset is None and path.suffix == ".json" and path.is_file() and path.read_bytes().lstrip()[:1] == b"{":
        raise InputError(path, "a JSON document, not a table; for the PsychoSafe paper's files add --preset psychosafe "
                               "(a plain table is CSV, TSV, JSONL, parquet or a JSON array of rows)")
    name, rows = read_psychosafe(path, system) if preset == "psychosafe" else read_plain_table(path, columns or {},
                                                                                                 system)
    if not rows:
        raise InputError(name, "no rows")
    return records_from_rows(name, rows, non_integer=non_integer, benchmark=path.stem)


def import_table(path: str | Path, out: str | Path, *, preset: str | None = None,
                 columns: dict[str, str] | None = None, system: str | None = None,
                 non_integer: NonIntegerRule = "keep") -> dict[str, RunFolder]:
    """Write one eval folder per system under `out` (out/<system>); returns them. A folder that an earlier import
    wrote is replaced whole; any other existing folder is left alone and the import refused."""
    start = time.perf_counter()
    by_system, counts = read_table(path, preset=preset, columns=columns, system=system, non_integer=non_integer)
    out = Path(out)
    for name in by_system:
        target = RunFolder(out / name)
        if target.path.exists() and any(target.path.iterdir()) and "import" not in target.manifest().get("stages", {}):
            raise PsychosafeError(f"{target.path} exists and was not written by `eval import`; import into another "
                                  "--out, or move it away")
    folders = {}
    for name, records in by_system.items():
        scored = [r for r in records if r.scores.judge_model]
        with_response = [r for r in records if r.response]
        if not scored and not with_response:
            raise InputError(path, f"system {name!r}: neither verdicts nor responses; nothing to import")
        with staged_folder(out / name) as staging:
            folder = RunFolder(staging)
            folder.start(config={"import": {"table": str(path), "preset": preset, "columns": columns or {},
                                            "non_integer": non_integer}},
                         models={"judges": sorted({r.scores.judge_model for r in scored})}, seed=0)
            folder.update(run_id=name)
            if with_response:
                save_eval([r.model_copy(update={"scores": EvalScores()}) for r in records], staging / GENERATED)
            if scored:
                save_eval([check_response(r) if r.response else r for r in records], staging / JUDGED)
            folder.record_stage("import", seconds=time.perf_counter() - start, counts=counts[name])
        write_eval_report(out / name)
        folders[name] = RunFolder(out / name)
    return folders
