"""Rule-based checks over responses: refusal markers and contact details verified against the directory.

A phone number, URL or e-mail address that is not in resources.yaml for the record's locale is an
unverified contact detail: a hallucinated hotline given to a person in crisis is the worst failure the
corpus can hold, so such a record is always set aside.
"""

from __future__ import annotations

import re
from typing import Literal

from psychosafe.schemas import Record, contact_key, default_resources

from .steps import StepResult, reject

REFUSAL_MARKERS = (
    "i can't help", "i cannot help", "i can’t help", "i won't help", "i will not help", "i can't provide",
    "i cannot provide", "i can’t provide", "i'm not able to", "i am not able to", "i'm unable to", "i am unable to",
    "i can't assist", "i cannot assist", "i can’t assist", "i won't be able to", "i can't give", "i cannot give",
    "i can't share", "i cannot share", "not something i can", "i'm sorry, but", "i am sorry, but", "i must decline",
    "i won't provide", "i can't do that", "i cannot do that", "i can't tell you", "i cannot tell you",
)

_URL = re.compile(r"\b(?:https?://)?(?:www\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:org|com|uk|gov|net|info|io|us)(?:/[^\s)\]>,]*)?",
                  re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
# Long numbers: 7+ digits with the usual separators. Short codes (988, 116 123, 741741): a few words after
# call/text/dial/ring/contact.
_PHONE = re.compile(r"(?<![\w.])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,5}\)[\s.-]?)?\d[\d\s.-]{4,}\d(?![\w])")
# Year ranges and dates ("1914-1918", "2017-06-30", "30/06/2017") are not phone numbers.
_NOT_PHONE = re.compile(r"(1[5-9]|20)\d\d\s*[-–/]\s*((1[5-9]|20)\d\d|\d\d)|\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
_SHORT = re.compile(r"\b(?:call|text|dial|ring|phone|contact|reach)\w*\s+(?:[^\s\d]+\s+){0,3}?(\d{3}(?:[\s-]?\d{3})?)(?![\d\w])",
                    re.IGNORECASE)


def extract_contacts(text: str) -> list[tuple[Literal["phone", "url", "email"], str]]:
    """Every phone number, URL and e-mail address in a text, in order, without repeats."""
    found: list[tuple[str, str]] = []
    emails = [m.group(0) for m in _EMAIL.finditer(text)]
    found += [("email", e) for e in emails]
    without_emails = _EMAIL.sub(" ", text)
    found += [("url", m.group(0).rstrip(".")) for m in _URL.finditer(without_emails)]
    for m in _PHONE.finditer(without_emails):
        digits = re.sub(r"\D", "", m.group(0))
        if 7 <= len(digits) <= 15 and not _NOT_PHONE.fullmatch(m.group(0).strip()):
            found.append(("phone", m.group(0).strip()))
    found += [("phone", m.group(1)) for m in _SHORT.finditer(without_emails)]
    out, keys = [], set()
    for kind, value in found:
        key = contact_key(kind, value)
        if key not in keys:
            keys.add(key)
            out.append((kind, value))
    return out


def refusal_markers(text: str) -> list[str]:
    lowered = text.lower().replace("’", "'")
    return [m for m in REFUSAL_MARKERS if m.replace("’", "'") in lowered]


def check_record(record: Record) -> Record:
    """Fill `checks` and `resources` from the response."""
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


def apply_checks(records: list[Record], *, on_refusal_mismatch: Literal["drop", "flag"] = "drop") -> StepResult:
    """Unverified contacts always block a record; a harmful prompt not refused (or a benign one refused)
    is dropped or only flagged in `checks.passed`, as configured."""
    kept, rejected = [], []
    for r in map(check_record, records):
        if r.checks.unverified_contacts:
            rejected.append(reject(r, "checks", f"unverified contact detail: {', '.join(r.checks.unverified_contacts)}"))
        elif r.checks.is_refusal != (r.label == "harmful") and on_refusal_mismatch == "drop":
            reason = "harmful prompt not refused" if r.label == "harmful" else "benign prompt refused"
            rejected.append(reject(r, "checks", f"{reason}: no refusal marker" if r.label == "harmful"
                                   else f"{reason}: {', '.join(r.checks.refusal_markers)}"))
        else:
            kept.append(r)
    flagged = sum(1 for r in kept if not r.checks.passed)
    return StepResult("checks", kept, rejected, notes={"kept_with_failed_check": flagged})
