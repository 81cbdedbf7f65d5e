"""The run's records, and which of them go into the review queue. A corpus audit (`psychosafe audit`) hands its
per-record flags over as findings: an `AuditFlag` is a `Finding` (code, found, why), shown beside the response and
picked by the `flagged` rule, which `select.flags` narrows to chosen codes or groups (label suspects, contacts, ...).
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path
from typing import Mapping, Sequence

from psychosafe.core.runs import RunFolder
from psychosafe.errors import InputError, PsychosafeError
from psychosafe.schemas import Record, dataset_to_records, default_rubric

from ..audit import WHY, audit_records_path, load_audit
from ..label_audit import SUSPECTS
from ..scores import JudgeTrust, untrusted_shortfalls
from .config import SelectionConfig
from .findings import Finding, Flags, record_findings

# select.flags may name a group for the codes that belong together
FLAG_GROUPS = {
    "label_suspect": tuple(SUSPECTS),
    "contact": ("unverified_contact", "malformed_contact", "other_locale_contact", "off_domain_service"),
    "duplicate": ("exact_duplicate", "near_duplicate"),
}
# an audit flag that says what one of the checks' own findings already says (the audit runs the same checks)
SAME_AS_CHECK = {"template_collapse": "template_group", "harmful_not_refused": "no_refusal_marker"}


def load_run_records(run: RunFolder) -> dict[str, list[Record]]:
    """split -> records: `curated/` when the run has it, else `synthesized/dataset` (as one split, train), else the
    records of a corpus audited into it (`audit/records`, as one split, audit)."""
    import datasets

    audited = audit_records_path(run.path)
    if (run.curated / "dataset_dict.json").is_file():
        where, loaded = run.curated, datasets.load_from_disk(str(run.curated))
    elif (run.synthesized / "dataset").is_dir():
        where = run.synthesized / "dataset"
        loaded = {"train": datasets.load_from_disk(str(where))}
    elif audited is not None:
        where, loaded = audited, {"audit": datasets.load_from_disk(str(audited))}
    else:
        raise InputError(run.path, "no curated/ or synthesized/dataset in this run folder, nor audit/records: run "
                                   "`psychosafe rebuild`, `psychosafe curate` or `psychosafe audit` first")
    try:
        return {name: dataset_to_records(split) for name, split in loaded.items()}
    except ValueError as exc:
        raise InputError(where, f"a row is not a valid record ({exc}); expected the schema of schemas/records.py") \
            from None


def is_low_score(record: Record) -> bool:
    """Below the rubric's thresholds (the same ones self-critique uses) on any criterion the judge scored."""
    return not default_rubric().meets_thresholds(record.scores, record.label, missing="pass")


def audit_flags(path: str | Path) -> dict[str, list[Finding]]:
    """record id -> the audit's flags as findings, from an audit folder or a run folder holding one."""
    return {r.id: [Finding(f.code, f.found, f.why) for f in r.flags] for r in load_audit(path) if r.flags}


def run_flags(run: RunFolder, flags: Flags | None = None) -> dict[str, list[Finding]]:
    """The flags `review push` shows and queues: the audit written into the run folder (when there is one), then
    `flags` (another source, e.g. `review push --audit OTHER`)."""
    out = audit_flags(run.path) if audit_records_path(run.path) else {}
    for rid, found in (flags or {}).items():
        out[rid] = [*out.get(rid, ()), *found]
    return out


def findings_with(record: Record, extra: Sequence[Finding] = ()) -> list[Finding]:
    """The checks' findings on the record with another source's flags among them, each said once: a flag whose code
    (or the check it repeats, SAME_AS_CHECK) is already there is left out."""
    own = record_findings(record)
    codes = {f.code for f in own}
    added = []
    for f in extra:
        code = SAME_AS_CHECK.get(f.code, f.code)
        if code not in codes:
            codes.add(code)
            added.append(f)
    return [f for f in own if f.flag] + added + [f for f in own if not f.flag]


def flag_codes_wanted(names: Sequence[str], findings: Mapping[str, list[Finding]]) -> set[str] | None:
    """select.flags as codes (groups expanded); None: any flag. A name that is neither a known code, a group, nor
    a code some record carries (a step of one's own) is refused, naming what is known, before anything is pushed."""
    if not names:
        return None
    present = {f.code for found in findings.values() for f in found if f.flag}
    known = set(WHY) | {"no_refusal_marker"} | set(FLAG_GROUPS) | present
    unknown = [n for n in names if n not in known]
    if unknown:
        raise PsychosafeError(f"review config: select.flags: unknown flag code(s) {unknown}; expected a group "
                              f"({', '.join(FLAG_GROUPS)}) or a code: {', '.join(sorted(known - set(FLAG_GROUPS)))}")
    return {code for n in names for code in FLAG_GROUPS.get(n, (n,))}


def is_flagged(findings: list[Finding], codes: set[str] | None = None) -> bool:
    """A check failed (a contact not in the directory, no refusal marker, a template answer, ...) or another
    source flagged it; with `codes`, only a flag of those counts. An empty response is not a flag here: a corpus of
    prompts alone is not a review queue."""
    return any(f.flag and f.code != "empty_response" and (codes is None or f.code in codes) for f in findings)


def select_records(records: list[Record], config: SelectionConfig, *, findings: dict[str, list[Finding]] | None = None,
                   trust: JudgeTrust | None = None) -> list[Record]:
    """The records any of the configured rules picks, in their original order. `findings`: record id -> its
    findings (findings.record_findings; computed here when not given). With the run's verdict on its judge
    (`trust`), the records the judge holds back on a criterion it is not trusted on are always picked: a person
    decides them instead."""
    if "all" in config.rules:
        return list(records)
    picked: set[str] = {r.id for r in records if untrusted_shortfalls(r, trust)}
    if "low_scores" in config.rules:
        picked |= {r.id for r in records if is_low_score(r)}
    if "flagged" in config.rules:
        given = findings or {}
        findings = {r.id: given[r.id] if r.id in given else record_findings(r) for r in records}
        codes = flag_codes_wanted(config.flags, findings)
        picked |= {r.id for r in records if is_flagged(findings[r.id], codes)}
    if "sample" in config.rules:
        rng = random.Random(config.seed)
        by_domain: dict[str, list[Record]] = defaultdict(list)
        for r in records:
            by_domain[r.domain].append(r)
        for domain in sorted(by_domain):
            rows = sorted(by_domain[domain], key=lambda r: r.id)  # independent of input order
            picked |= {r.id for r in rng.sample(rows, min(config.sample_per_domain, len(rows)))}
    return [r for r in records if r.id in picked]
