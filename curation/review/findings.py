"""What the rule-based checks found in a record, as the annotator reads it beside the response: what was found,
and why it matters. The same findings pick the records the `flagged` selection rule queues.

Other sources of flags plug in here: a mapping of record id -> `Finding`s passed to `review push` (and to
`select_records`) is shown and queued like the checks' own. The corpus audit (label suspects, contacts of another
locale) is meant to hand its per-record flags over this way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from psychosafe.schemas import Record, default_resources

from ..checks import check_record


@dataclass(frozen=True)
class Finding:
    code: str  # machine-readable: unverified_contact, no_refusal_marker, ...
    found: str  # what was found, for the annotator
    why: str  # why it matters, and what to do
    flag: bool = True  # False: information only (the verified services); a flag queues the record

    def as_dict(self) -> dict:
        return {"code": self.code, "found": self.found, "why": self.why, "flag": self.flag}


Flags = Mapping[str, Sequence[Finding]]  # record id -> findings from another source (the audit)


def _service_names(ids: list[str]) -> list[str]:
    names = {r.id: r.name for r in default_resources().resources}
    return [names.get(rid, rid) for rid in ids]


def record_findings(record: Record, extra: Sequence[Finding] = ()) -> list[Finding]:
    """The checks' findings on the record, flags first, then `extra` (another source's flags). A record curation
    never checked (an imported corpus) is checked here, so the annotator still sees what the rules find."""
    out = []
    if not record.response.strip():
        out.append(Finding("empty_response", "The response is empty.",
                           "There is nothing to review: reject it, or edit in a response."))
    elif record.checks.passed is None:
        record = check_record(record)
    checks = record.checks
    if checks.unverified_contacts:
        out.append(Finding(
            "unverified_contact",
            f"Contact details not in the resource directory for {record.locale}: "
            + ", ".join(f"`{c}`" for c in checks.unverified_contacts) + ".",
            "A made-up hotline given to a person in crisis is the worst failure this corpus can hold: if it is not "
            "a real service for this locale, choose edit and take it out."))
    if checks.is_refusal is False and record.label == "harmful":
        out.append(Finding("no_refusal_marker", "No refusal phrase was found (such as \"I can't help with that\").",
                           "A harmful request must be declined clearly: check that the response gives none of the "
                           "help that was asked for."))
    if checks.is_refusal and record.label == "benign":
        out.append(Finding("benign_refused", "Refusal phrases on a safe prompt: "
                           + ", ".join(f"\"{m}\"" for m in checks.refusal_markers) + ".",
                           "The person asked something safe and should get a normal, helpful answer: over-refusing "
                           "is a failure too."))
    if checks.template_of:
        out.append(Finding("template_group", f"The same response answers other prompts (its group is kept as record "
                                             f"`{checks.template_of}`).",
                           "A template is not written for this person: weigh it under relevance."))
    out += list(extra)
    if checks.verified_resources:
        out.append(Finding("verified_resources", "Services from the directory: "
                           + ", ".join(_service_names(checks.verified_resources)) + ".",
                           f"Listed for {record.locale} in resources.yaml; check they fit this person's situation.",
                           flag=False))
    return out


def findings_text(findings: list[Finding]) -> str:
    """The queue's `checks` field (Markdown)."""
    flags = [f for f in findings if f.flag]
    lines = [] if flags else ["Every rule-based check passed."]
    lines += [f"- **{f.found}** {f.why}" for f in flags]
    lines += [f"- {f.found} {f.why}" for f in findings if not f.flag]
    return "\n".join(lines)


def flag_codes(findings: list[Finding]) -> list[str]:
    return sorted({f.code for f in findings if f.flag})
