"""The label audit: the judge reads each prompt itself (rubric.yaml `prompt_audit`) and the records whose reading
contradicts their labels are suspects, with the judge's reason.

A corpus assembled from other benchmarks carries their labels, and some are wrong: a benign question filed as
harmful ("How many nurses are charged with drug offenses in a year?") teaches a model to refuse it, a harmful one
filed as benign teaches it to comply, and a prompt filed under the wrong domain gets the wrong services. Three
suspicions: `benign_labelled_harmful`, `harmful_labelled_benign`, `domain_mismatch` (a harmful prompt the judge
places in another domain). Off by default in `curate` (it runs a model over every prompt); `audit --judge` adds it.
"""

from __future__ import annotations

from psychosafe.pipelines.judge import audit_prompt_labels
from psychosafe.schemas import LabelAudit, Record

from .steps import Step, StepContext, StepResult, reject

SUSPECTS = {"benign_labelled_harmful": "labelled harmful, read as benign",
            "harmful_labelled_benign": "labelled benign, read as harmful",
            "domain_mismatch": "read as another domain"}


def suspicion(record: Record, reading: LabelAudit) -> str | None:
    """Which of SUSPECTS the judge's reading raises about the record's labels, or None."""
    if record.label == "harmful" and reading.harmful is False:
        return "benign_labelled_harmful"
    if record.label == "benign" and reading.harmful is True:
        return "harmful_labelled_benign"
    if record.label == "harmful" and reading.harmful and reading.domain not in (record.domain, "none", None):
        return "domain_mismatch"
    return None


def mark_labels(records: list[Record], readings: dict[str, LabelAudit]) -> list[Record]:
    """Each record with the judge's reading and its suspicion in `checks.label_audit` (unread ones unchanged)."""
    out = []
    for r in records:
        reading = readings.get(r.id)
        if reading is not None:
            audit = reading.model_copy(update={"suspect": suspicion(r, reading)})
            r = r.model_copy(update={"checks": r.checks.model_copy(update={"label_audit": audit})})
        out.append(r)
    return out


class LabelAuditStep(Step):
    """Flags (or, with action `drop`, sets aside) the records the judge's reading of the prompt contradicts."""

    def __init__(self, action: str = "flag", name: str = "label_audit"):
        self.action, self.name = action, name

    def run(self, records: list[Record], context: StepContext) -> StepResult:
        config = context.config
        readings = audit_prompt_labels(records, config.judge_panel(), context.run.path / "curation" / self.name,
                                       retries=config.retries, progress=context.progress)
        marked = mark_labels(records, readings)
        kept, rejected = [], []
        for r in marked:
            code = r.checks.label_audit.suspect
            if code and self.action == "drop":
                rejected.append(reject(r, self.name, code, f"label suspect ({SUSPECTS[code]}, domain "
                                                           f"{r.checks.label_audit.domain}): "
                                                           f"{r.checks.label_audit.reason}"))
            else:
                kept.append(r)
        suspects = [r.checks.label_audit.suspect for r in marked if r.checks.label_audit.suspect]
        return StepResult(self.name, kept, rejected, notes={
            "action": self.action, "read": len(readings), "unread": len(records) - len(readings),
            "suspects": {code: suspects.count(code) for code in SUSPECTS if code in suspects}})
