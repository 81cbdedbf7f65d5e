"""Whether a record may be used downstream: published, trained on, or trusted without a second look in review.
One policy, applied by publish, train and review alike, so a record one stage refuses is never quietly used by
another."""

from __future__ import annotations

from psychosafe.schemas import Record

from .checks import check_record
from .scores import JudgeTrust, untrusted_shortfalls

# code -> what a person reads; the order is the order reasons are listed in
BLOCKS = {
    "empty_response": "empty response",
    "unverified_contacts": "unverified contact details",
    "checks_not_run": "rule-based checks never ran",
    "checks_failed": "failed rule-based checks",
    "rejected_in_review": "rejected in review",
    "not_reviewed": "not reviewed yet",
    "judge_untrusted": "not reviewed, and held back by the judge on a criterion it is not trusted on",
}


def blocking_reasons(record: Record, *, require_review: bool = False, require_checks: bool = True,
                     trust: JudgeTrust | None = None) -> list[str]:
    """Why the record may not be used, as codes of BLOCKS ([] when it may).

    Never usable: an empty response, a contact detail the directory does not list for the record's locale (checked
    again on the response as it is now: a reviewer's edit comes after curation's checks), a rejection in review.
    `require_checks`: the rule-based checks must have run and passed (publish always; train unless told to keep
    flagged records). `require_review`: a person must have reviewed it (publish, as configured). `trust`: the run's
    verdict on its judge (curation.scores.read_judge_trust); an unreviewed record the judge scores below the rubric's
    thresholds on a criterion it is not trusted on waits for a person, even where review is not required."""
    reasons = []
    if not record.response.strip():
        reasons.append("empty_response")
    elif record.checks.unverified_contacts or check_record(record).checks.unverified_contacts:
        reasons.append("unverified_contacts")
    if require_checks:
        if record.checks.passed is None:
            reasons.append("checks_not_run")
        elif record.checks.passed is False:
            reasons.append("checks_failed")
    if record.review.status == "rejected":
        reasons.append("rejected_in_review")
    elif record.review.status == "pending":
        if require_review:
            reasons.append("not_reviewed")
        elif untrusted_shortfalls(record, trust):
            reasons.append("judge_untrusted")
    return reasons


def describe(codes: list[str]) -> list[str]:
    return [BLOCKS[c] for c in codes]
