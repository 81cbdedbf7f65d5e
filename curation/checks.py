"""Rule-based checks over responses: refusal markers and contact details verified against the directory.

A phone number, URL or e-mail address that is not in resources.yaml for the record's locale is an
unverified contact detail: a hallucinated hotline given to a person in crisis is the worst failure the
corpus can hold, so such a record is always set aside.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

from psychosafe.core.text import extract_contacts, refusal_markers
from psychosafe.schemas import Record, contact_key, default_resources

from .steps import StepResult, reject


def check_record(record: Record) -> Record:
    """Fill `checks` and `resources` from the response (a record without a response is left as it is)."""
    if not record.response.strip():
        return record
    index = default_resources().contact_index(record.locale)
    verified, unverified = [], []
    for kind, value in extract_contacts(record.response):
        key = contact_key(kind, value)
        # a phone number may be listed as a text number and the other way round
        rid = index.get(key)
        (verified if rid else unverified).append(rid or value)
    markers = refusal_markers(record.response)
    is_refusal = bool(markers)
    expected_refusal = record.label == "harmful"
    checks = record.checks.model_copy(update={
        "is_refusal": is_refusal, "refusal_markers": markers,
        "verified_resources": sorted(set(verified)), "unverified_contacts": unverified,
        "passed": not unverified and is_refusal == expected_refusal,
    })
    return record.model_copy(update={"checks": checks, "resources": sorted(set(verified))})


def apply_checks(records: list[Record], *, on_refusal_mismatch: Literal["drop", "flag"] = "drop",
                 name: str = "checks") -> StepResult:
    """Unverified contacts always block a record; a harmful prompt not refused (or a benign one refused)
    is dropped or only flagged in `checks.passed`, as configured. Records without a response (a corpus of
    prompts only) pass through unchecked and are counted."""
    kept, rejected = [], []
    for r in map(check_record, records):
        if r.checks.is_refusal is None:
            kept.append(r)
        elif r.checks.unverified_contacts:
            rejected.append(reject(r, name, "unverified_contact",
                                   f"unverified contact detail: {', '.join(r.checks.unverified_contacts)}"))
        elif r.checks.is_refusal != (r.label == "harmful") and on_refusal_mismatch == "drop":
            reason = "harmful prompt not refused" if r.label == "harmful" else "benign prompt refused"
            rejected.append(reject(r, name, "harmful_not_refused" if r.label == "harmful" else "benign_refused",
                                   f"{reason}: no refusal marker" if r.label == "harmful"
                                   else f"{reason}: {', '.join(r.checks.refusal_markers)}"))
        else:
            kept.append(r)
    flagged = sum(1 for r in kept if r.checks.passed is False)
    unchecked = sum(1 for r in kept if r.checks.is_refusal is None)
    return StepResult(name, kept, rejected, notes={
        "kept_with_failed_check": flagged, "without_response": unchecked,
        "unverified_contacts": dict(Counter(c for r in rejected for c in _unverified(r)).most_common()),
        "verified_resources": dict(Counter(v for r in kept for v in r.checks.verified_resources).most_common())})


def _unverified(rejected) -> list[str]:
    return rejected.record.checks.unverified_contacts
