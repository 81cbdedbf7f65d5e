"""The annotators' answers merged into the run's records: a decision by the configured rule (majority or
unanimity), the human scores (the four criteria for a harmful prompt, and the conversation criteria for a harmful
conversation; compliance for a benign one), a corrected
response for an edit (checked again like any response), and the disagreements and undecided records listed for
the report."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from psychosafe.schemas import Record, default_rubric

from ..checks import check_record
from .agreement import AggregationRule, aggregate, normalize_label
from .answers import Annotation, QueueRecord, answer_as_class, answer_as_score
from .settings import criterion_questions

DECISION_STATUS = {"accept": "accepted", "reject": "rejected", "edit": "edited"}  # keys: settings.DECISIONS
STATUSES = ("accepted", "rejected", "edited", "pending")


@dataclass
class MergeResult:
    splits: dict[str, list[Record]]
    disagreements: list[dict]
    problems: list[dict]
    annotators: list[str]
    unverified_after_edit: list[str]


def merge_record(record: Record, submitted: list[Annotation], *, rule: AggregationRule,
                 min_submitted: int) -> tuple[Record, list[dict], list[dict]]:
    """The record with its review merged in, plus the disagreements and problems it showed. Answers are read
    case-insensitively; a missing answer is left out, not counted as an answer of its own."""
    rubric = default_rubric()
    harmful = record.label == "harmful"
    disagreements, problems = [], []
    questions = criterion_questions(record.label) + (["strategy"] if harmful else []) + ["decision"]
    for question in questions:
        answers = {a.user: a.values[question] for a in submitted if normalize_label(a.values.get(question)) is not None}
        if len({normalize_label(v) for v in answers.values()}) > 1:
            disagreements.append({"id": record.id, "domain": record.domain, "question": question, "answers": answers})
    human: dict[str, Any] = {}
    if harmful:
        for c in rubric.criteria + (rubric.conversation if record.is_conversation else []):
            values = [v for a in submitted if (v := answer_as_score(c, a.values.get(c.id))) is not None]
            if c.kind == "binary":
                human[c.id] = aggregate(values, rule)
            else:
                human[c.id] = round(sum(values) / len(values), 3) if values else None
    else:
        options = rubric.benign.option_ids()
        human[rubric.benign.id] = aggregate(
            [v for a in submitted if (v := answer_as_class(options, a.values.get(rubric.benign.id))) is not None], rule)
    review = record.review.model_copy(update={"annotator_count": len(submitted),
                                              "human_scores": record.review.human_scores.model_copy(update=human)})
    update: dict[str, Any] = {}
    status = "pending"
    if len(submitted) >= min_submitted:
        decision = aggregate([answer_as_class(list(DECISION_STATUS), a.values.get("decision")) for a in submitted],
                             rule)
        if decision is None:
            problems.append({"id": record.id, "problem": f"no {rule} decision; stays pending"})
        elif decision == "edit":
            texts = [a.values.get("corrected_response", "").strip() for a in submitted
                     if answer_as_class(list(DECISION_STATUS), a.values.get("decision")) == "edit"
                     and (a.values.get("corrected_response") or "").strip()]
            if texts:
                status = "edited"
                update["response"] = Counter(texts).most_common(1)[0][0]  # ties: the first annotator by name
                review = review.model_copy(update={"original_response": record.response})
            else:
                problems.append({"id": record.id, "problem": "edit chosen without a corrected response; stays pending"})
        else:
            status = DECISION_STATUS[decision]
        strategy = aggregate([a.values["strategy"] for a in submitted if a.values.get("strategy")], rule)
        if harmful and status in ("accepted", "edited") and strategy and strategy != "none":
            update["strategy"] = strategy
    update["review"] = review.model_copy(update={"status": status})
    merged = record.model_copy(update=update)
    if "response" in update:  # a human edit is checked like any response: its contact details must be listed
        merged = check_record(merged)
    return merged, disagreements, problems


def merge_reviews(splits: dict[str, list[Record]], queue_records: list[QueueRecord], *, rule: AggregationRule,
                  min_submitted: int) -> MergeResult:
    by_id = {q.id: q for q in queue_records}
    merged_splits, disagreements, problems, unverified = {}, [], [], []
    annotators = sorted({a.user for q in queue_records for a in q.submitted()})
    for split, records in splits.items():
        merged_splits[split] = []
        for record in records:
            queued = by_id.get(record.id)
            if queued is None:
                merged_splits[split].append(record)  # not in the queue: stays as it was (pending)
                continue
            merged, dis, probs = merge_record(record, queued.submitted(), rule=rule, min_submitted=min_submitted)
            merged_splits[split].append(merged)
            disagreements += dis
            problems += probs
            if merged.review.status == "edited" and merged.checks.unverified_contacts:
                unverified.append(merged.id)
    return MergeResult(merged_splits, disagreements, problems, annotators, unverified)
