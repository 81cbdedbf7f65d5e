"""`psychosafe audit`: every check on a corpus someone already has, nothing dropped.

The audit runs curation's own steps (registry.py) through the one loop (steps.run_steps) in its "flag, don't drop"
mode: whatever a step would set aside is kept and flagged with the step's code and reason. It adds what only flags
(a real service of another locale, an off-domain service, a template group, a label suspect) and writes into
`<run>/audit/`: `records/` (the records with their per-record `flags`, a dataset `review push` can queue: each flag
reads as a review finding, code / found / why), `report.md` with plots, and `summary.json`.
"""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from psychosafe.core.backends import embedder_id, model_id
from psychosafe.core.config import DEFAULT_STEPS, RebuildConfig, SeedSource
from psychosafe.core.io import write_json_atomic
from psychosafe.core.runs import RunFolder
from psychosafe.errors import InputError
from psychosafe.schemas import Record, Rejected, dataset_to_records, default_taxonomy, features_of, records_to_dataset

from .audit_report import write_audit_report
from .checks import contact_table
from .contacts import describe
from .contamination import overlap_counts
from .inputs import CorpusImport, import_corpus
from .label_audit import SUSPECTS
from .registry import BUILTIN_STEPS
from .steps import CurationAnalysis, Step, StepContext, run_steps

AUDIT_DIR = "audit"
# code -> why it matters, for the person who reads the flag (review shows it beside the response)
WHY = {
    "exact_duplicate": "The same prompt appears more than once: it would be trained on twice.",
    "near_duplicate": "Another prompt asks the same in other words: keep one.",
    "template_group": "The same response answers other prompts: it is not written for this person.",
    "template_collapse": "The same response answers other prompts: it is not written for this person.",
    "unverified_contact": "A contact detail in no directory entry: a made-up hotline must never reach a person.",
    "malformed_contact": "A real service written wrongly reaches no one: correct it to the listed form.",
    "other_locale_contact": "A real service of another country: check it fits the person's locale.",
    "off_domain_service": "A real service for another kind of problem: check it fits this prompt.",
    "eval_contamination": "A prompt of an evaluation set: training on it inflates that benchmark's scores.",
    "harmful_not_refused": "A harmful prompt answered without a refusal.",
    "benign_refused": "A safe prompt refused: over-refusal is a failure too.",
    "score_below_threshold": "The judge scored the response below the rubric's thresholds.",
    **{code: f"The judge's reading of the prompt contradicts its labels ({what}): check them." for code, what in
       SUSPECTS.items()},
}


class AuditFlag(BaseModel):
    """One thing the audit found about a record, as a review finding reads it."""

    model_config = ConfigDict(extra="forbid")

    code: str
    stage: str
    found: str
    why: str


class AuditRecord(Record):
    """A record of an audited corpus, with everything the audit found about it."""

    flags: list[AuditFlag] = []


AUDIT_FEATURES = features_of(AuditRecord)


def audit_records_path(path: str | Path) -> Path | None:
    """Where an audit's records are: `path` is the audit folder itself or a run folder the audit wrote into; None
    when neither holds them."""
    path = Path(path)
    for folder in (path, path / AUDIT_DIR):
        if (folder / "records" / "dataset_info.json").is_file():
            return folder / "records"
    return None


def load_audit(path: str | Path) -> list[AuditRecord]:
    """The audited records with their flags, from an audit folder (`RUN/audit`) or the run folder holding it."""
    import datasets

    where = audit_records_path(path)
    if where is None:
        raise InputError(path, f"no audit records here: expected an audit folder with records/ (RUN/{AUDIT_DIR}, "
                               f"written by `psychosafe audit`) or a run folder holding {AUDIT_DIR}/records")
    try:
        return dataset_to_records(datasets.load_from_disk(str(where)), AuditRecord)
    except ValueError as exc:
        raise InputError(where, f"a row is not an audited record ({exc}); expected the rows `psychosafe audit` "
                                "writes (the record schema and `flags`)") from None


def audit_steps(config: RebuildConfig, *, judge: bool) -> list[Step]:
    """Every checking step, in curation's order (balance selects, it does not check), the label audit with `judge`,
    then the config's own steps (by import path)."""
    names = [n for n in DEFAULT_STEPS if n != "balance_curated"]
    if judge:
        names.insert(names.index("checks") + 1, "label_audit")
    steps = []
    for name in names:
        step = BUILTIN_STEPS[name](config)
        step.name = name
        steps.append(step)
    for entry in config.curation.steps:
        if entry.enabled and entry.step not in BUILTIN_STEPS:
            step = entry.build()
            step.name = entry.stage
            steps.append(step)
    return steps


def unique_ids(records: list[Record]) -> list[Record]:
    """The audit keeps every row: a repeated id (the same prompt and domain twice) gets a suffix, so each row has
    flags of its own."""
    seen: Counter = Counter()
    out = []
    for r in records:
        seen[r.id] += 1
        out.append(r if seen[r.id] == 1 else r.model_copy(update={"id": f"{r.id}-{seen[r.id]}"}))
    return out


def _derived_flags(r: Record) -> list[AuditFlag]:
    """What no step sets aside but a person should see: a template group, a service of another locale or of another
    domain, a label suspect."""
    out = []
    if r.checks.template_of:
        out.append(AuditFlag(code="template_group", stage="template_collapse",
                             found=f"in the template group of {r.checks.template_of}", why=WHY["template_group"]))
    for c in r.checks.contacts:
        if c.outcome == "other_locale":
            out.append(AuditFlag(code="other_locale_contact", stage="checks", found=describe(c),
                                 why=WHY["other_locale_contact"]))
        if c.off_domain and not c.emergency:
            out.append(AuditFlag(code="off_domain_service", stage="checks",
                                 found=f"{describe(c)}, which does not list the domain {r.domain}",
                                 why=WHY["off_domain_service"]))
    audit = r.checks.label_audit
    if audit.suspect:
        out.append(AuditFlag(code=audit.suspect, stage="label_audit",
                             found=f"{SUSPECTS[audit.suspect]} (harmful: {audit.harmful}, domain: {audit.domain}): "
                                   f"{audit.reason}", why=WHY[audit.suspect]))
    return out


def record_flags(records: list[Record], flagged: list[Rejected]) -> list[AuditRecord]:
    """Each record with its flags: what the steps would have set aside, then what only flags; one flag per code."""
    by_id: dict[str, list[AuditFlag]] = defaultdict(list)
    for x in flagged:
        by_id[x.id].append(AuditFlag(code=x.code, stage=x.stage, found=x.reason,
                                     why=WHY.get(x.code, "A curation step would set this record aside.")))
    out = []
    for r in records:
        flags, codes = [], set()
        for f in by_id.get(r.id, []) + _derived_flags(r):
            if f.code not in codes:
                codes.add(f.code)
                flags.append(f)
        out.append(AuditRecord(**r.model_dump(), flags=flags))
    return out


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def distinct_n(texts: list[str], n: int) -> float:
    """Distinct n-grams over all n-grams of the texts (1.0: no n-gram repeats; near 0: one text over and over)."""
    grams = [tuple(w[i:i + n]) for w in map(_words, texts) for i in range(len(w) - n + 1)]
    return round(len(set(grams)) / len(grams), 4) if grams else 0.0


def diversity(records: list[Record], collapse: dict) -> dict:
    """Distinct responses per domain, distinct-1/2 of the responses, and the largest template's share."""
    answered = [r for r in records if r.response.strip()]
    per_domain = {}
    for d in default_taxonomy().domain_ids():
        rows = [r for r in answered if r.domain == d]
        if rows:
            per_domain[d] = {"records": len(rows), "distinct_responses": len({" ".join(_words(r.response))
                                                                               for r in rows})}
    largest = collapse.get("largest_template", 0)
    return {"distinct_responses_per_domain": per_domain,
            "distinct_1": distinct_n([r.response for r in answered], 1),
            "distinct_2": distinct_n([r.response for r in answered], 2),
            "largest_template": largest,
            "largest_template_share": round(largest / len(answered), 4) if answered else 0.0}


def summarize(audited: list[AuditRecord], imported: CorpusImport, stages: dict, collapse: dict) -> dict:
    """summary.json: the figures the report shows, for a program."""
    flags = Counter(f.code for r in audited for f in r.flags)
    outcomes = Counter(c.outcome for r in audited for c in r.checks.contacts)
    return {
        "records": len(audited), "input": imported.counts(),
        "flagged_records": sum(1 for r in audited if r.flags), "flags": dict(flags.most_common()),
        "duplicates": {"exact": flags["exact_duplicate"], "near": flags["near_duplicate"]},
        "templates": {k: collapse.get(k) for k in ("templates", "records_in_templates", "collapse_rate",
                                                    "collapse_per_domain")},
        "diversity": diversity(audited, collapse),
        "contacts": {"outcomes": dict(outcomes), "off_domain": flags["off_domain_service"],
                     "table": contact_table(audited)},
        "contamination": overlap_counts(audited),
        "label_audit": ({code: flags[code] for code in SUSPECTS} if "label_audit" in stages else None),
        "sources": dict(Counter(r.source.dataset or "(none)" for r in audited).most_common()),
        "licenses": dict(Counter(r.source.license or "(none)" for r in audited).most_common()),
        "seconds": {name: s["seconds"] for name, s in stages.items()},
    }


def audit_corpus(path: str | Path, config: RebuildConfig, run: RunFolder, *, source: SeedSource | None = None,
                 judge: bool = False, progress: bool = False) -> dict:
    """Audit the corpus at `path` into `run`/audit; return the summary. Bad input fails before any model loads."""
    started = time.perf_counter()
    imported = import_corpus(path, source)
    records = unique_ids(imported.records)
    models = {"embedder": embedder_id(config.embedder)}
    if judge:
        models["judges"] = [model_id(j) for j in config.judge_panel()]
    run.start(config=config.model_dump(mode="json"), seed=config.seed, models=models)
    run.update(audit_input={"path": str(path), **imported.counts(),
                            **({"source": source.model_dump(mode="json")} if source else {})})
    cur = config.curation
    context = StepContext(config, run, progress=progress, flag_only=True, analysis=CurationAnalysis(
        dedup_threshold=cur.dedup.threshold, collapse_threshold=cur.template_collapse.threshold))
    records = run_steps(audit_steps(config, judge=judge), records, context)
    audited = record_flags(records, context.flagged)
    folder = run.path / AUDIT_DIR
    dataset = records_to_dataset(audited, AUDIT_FEATURES)
    dataset.save_to_disk(str(folder / "records"), num_shards=1)
    dataset.to_parquet(str(folder / "records.parquet"))
    stages = run.manifest().get("stages", {})
    summary = summarize(audited, imported, stages, context.analysis.collapse)
    summary["seconds"]["total"] = round(time.perf_counter() - started, 3)
    write_json_atomic(folder / "summary.json", summary)
    write_audit_report(folder, summary, audited, context.analysis)
    return summary
