"""The run's records, and which of them go into the review queue."""

from __future__ import annotations

import random
from collections import defaultdict

from psychosafe.core.runs import RunFolder
from psychosafe.errors import InputError
from psychosafe.schemas import Record, dataset_to_records, default_rubric

from ..scores import JudgeTrust, untrusted_shortfalls
from .config import SelectionConfig
from .findings import Finding, record_findings


def load_run_records(run: RunFolder) -> dict[str, list[Record]]:
    """split -> records: `curated/` when the run has it, else `synthesized/dataset` (as one split, train)."""
    import datasets

    if (run.curated / "dataset_dict.json").is_file():
        where, loaded = run.curated, datasets.load_from_disk(str(run.curated))
    elif (run.synthesized / "dataset").is_dir():
        where = run.synthesized / "dataset"
        loaded = {"train": datasets.load_from_disk(str(where))}
    else:
        raise InputError(run.path, "no curated/ or synthesized/dataset in this run folder: run `psychosafe rebuild` "
                                   "or `psychosafe curate` first")
    try:
        return {name: dataset_to_records(split) for name, split in loaded.items()}
    except ValueError as exc:
        raise InputError(where, f"a row is not a valid record ({exc}); expected the schema of schemas/records.py") \
            from None


def is_low_score(record: Record) -> bool:
    """Below the rubric's thresholds (the same ones self-critique uses) on any criterion the judge scored."""
    return not default_rubric().meets_thresholds(record.scores, record.label, missing="pass")


def is_flagged(findings: list[Finding]) -> bool:
    """A check failed (a contact not in the directory, no refusal marker, a template answer, ...) or another
    source flagged it. An empty response is not a flag here: a corpus of prompts alone is not a review queue."""
    return any(f.flag and f.code != "empty_response" for f in findings)


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
        findings = findings or {}
        picked |= {r.id for r in records if is_flagged(findings[r.id] if r.id in findings else record_findings(r))}
    if "sample" in config.rules:
        rng = random.Random(config.seed)
        by_domain: dict[str, list[Record]] = defaultdict(list)
        for r in records:
            by_domain[r.domain].append(r)
        for domain in sorted(by_domain):
            rows = sorted(by_domain[domain], key=lambda r: r.id)  # independent of input order
            picked |= {r.id for r in rng.sample(rows, min(config.sample_per_domain, len(rows)))}
    return [r for r in records if r.id in picked]
