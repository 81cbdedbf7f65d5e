"""Rule-based checks over responses: refusal markers, and contact details against the directory (contacts.py).
A conversation's contact details are checked in every assistant turn; its refusal is looked for in the turns that
answer the risk (from the risk turn on) of a harmful conversation, and in every turn of a benign one.

Each contact has one of four outcomes (verified, other_locale, malformed, unknown). An unknown or malformed one
always sets the record aside: a hallucinated hotline given to a person in crisis is the worst failure the corpus can
hold, and a real one written wrongly reaches no one. A real service of another locale is flagged, and sets the record
aside only where configured (curation.contacts.other_locale: block); blocking a real service is the second worst.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

from psychosafe.core.text import refusal_markers
from psychosafe.schemas import ContactCheck, Record

from .contacts import blocks, classify_contacts, describe
from .steps import StepResult, reject

CONTACT_CODES = {"unknown": "unverified_contact", "malformed": "malformed_contact",
                 "other_locale": "other_locale_contact"}
MAX_CONTACT_ROWS = 200


def conversation_contacts(record: Record) -> list[ContactCheck]:
    """Every contact detail the assistant gives, turn by turn (a single prompt: its response), once each."""
    out, seen = [], set()
    for text in record.assistant_turns:
        for c in classify_contacts(text, record.locale, record.domain):
            if c.contact not in seen:
                seen.add(c.contact)
                out.append(c)
    return out


def refusal_turns(record: Record) -> list[str]:
    """The assistant turns a refusal is looked for in: the response of a single prompt; a harmful conversation's
    answers from its risk turn on (all of them when it names none); every answer of a benign conversation."""
    answers = record.assistant_turns
    if record.label == "harmful" and record.risk_turn:
        return answers[record.risk_turn - 1:] or answers[-1:]
    return answers


def check_record(record: Record, *, other_locale: Literal["flag", "block"] = "flag") -> Record:
    """Fill `checks` and `resources` from the response, and a conversation's earlier answers (a record without a
    response is left as it is)."""
    if not record.response.strip():
        return record
    contacts = conversation_contacts(record)
    verified = sorted({c.resource for c in contacts if c.outcome == "verified"})
    blocking = [c.contact for c in contacts if blocks(c, other_locale=other_locale)]
    markers = list(dict.fromkeys(m for text in refusal_turns(record) for m in refusal_markers(text)))
    is_refusal = bool(markers)
    checks = record.checks.model_copy(update={
        "is_refusal": is_refusal, "refusal_markers": markers, "contacts": contacts,
        "verified_resources": verified, "unverified_contacts": blocking,
        "passed": not blocking and is_refusal == (record.label == "harmful"),
    })
    return record.model_copy(update={"checks": checks, "resources": verified})


def contact_table(records: list[Record]) -> list[list]:
    """[contact, outcome, records] for every contact the records give, most frequent first (report and card)."""
    counts = Counter((c.contact, c.outcome + (", off-domain" if c.off_domain else "") +
                      (", emergency" if c.emergency else "")) for r in records for c in r.checks.contacts)
    return [[contact, outcome, n] for (contact, outcome), n in counts.most_common()]


def apply_checks(records: list[Record], *, on_refusal_mismatch: Literal["drop", "flag"] = "drop",
                 other_locale: Literal["flag", "block"] = "flag", name: str = "checks") -> StepResult:
    """A blocking contact always sets a record aside (the code names the worst outcome: unverified_contact for an
    unknown one, then malformed_contact, then other_locale_contact); a harmful prompt not refused (or a benign one
    refused) is dropped or only flagged in `checks.passed`, as configured. Records without a response (a corpus of
    prompts only) pass through unchecked and are counted."""
    kept, rejected = [], []
    for r in (check_record(r, other_locale=other_locale) for r in records):
        blocking = [c for c in r.checks.contacts if blocks(c, other_locale=other_locale)]
        if r.checks.is_refusal is None:
            kept.append(r)
        elif blocking:
            worst = next(o for o in CONTACT_CODES if any(c.outcome == o for c in blocking))
            rejected.append(reject(r, name, CONTACT_CODES[worst],
                                   f"{worst.replace('_', ' ')} contact detail: "
                                   + "; ".join(describe(c) for c in blocking)))
        elif r.checks.is_refusal != (r.label == "harmful") and on_refusal_mismatch == "drop":
            what = "conversation" if r.is_conversation else "prompt"
            reason = f"harmful {what} not refused" if r.label == "harmful" else f"benign {what} refused"
            rejected.append(reject(r, name, "harmful_not_refused" if r.label == "harmful" else "benign_refused",
                                   f"{reason}: no refusal marker" if r.label == "harmful"
                                   else f"{reason}: {', '.join(r.checks.refusal_markers)}"))
        else:
            kept.append(r)
    checked = kept + [x.record for x in rejected]
    outcomes = Counter(c.outcome for r in checked for c in r.checks.contacts)
    return StepResult(name, kept, rejected, notes={
        "kept_with_failed_check": sum(1 for r in kept if r.checks.passed is False),
        "without_response": sum(1 for r in kept if r.checks.is_refusal is None),
        "contact_outcomes": dict(outcomes),
        "off_domain": sum(1 for r in checked for c in r.checks.contacts if c.off_domain),
        "contacts": contact_table(checked)[:MAX_CONTACT_ROWS],
        "unverified_contacts": dict(Counter(c for x in rejected for c in x.record.checks.unverified_contacts)
                                    .most_common()),
        "verified_resources": dict(Counter(v for r in kept for v in r.checks.verified_resources).most_common())})
