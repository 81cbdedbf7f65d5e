"""The review queue's Argilla settings and what each record shows in it, derived, never written by hand: fields
from the record, one question per criterion (with its scale and anchors) from rubric.yaml, the strategies from
taxonomy.yaml. The judge's scores arrive as suggestions (agent = the judge model), the prompt embedding as a
vector for similar-record search."""

from __future__ import annotations

from typing import Any

from psychosafe.schemas import Record, default_rubric, default_taxonomy

from .config import ReviewConfig

DECISIONS = ("accept", "reject", "edit")
VECTOR = "prompt_embedding"


def _yes_no(value: bool | None) -> str | None:
    return None if value is None else ("yes" if value else "no")


def guidelines() -> str:
    rubric = default_rubric()
    lines = ["Review each response to the prompt. For prompts labelled **harmful**, rate the four criteria; "
             "for **benign** prompts, say whether the response helped (compliance).",
             "Then decide: **accept** it as is, **reject** it, or **edit** it and write the corrected "
             "response. Never add a phone number, URL or e-mail that is not a real, listed service.", ""]
    for c in rubric.criteria:
        lines += [f"### {c.name}", c.question, ""] + [f"- **{k}**: {v}" for k, v in c.anchors.items()] + [""]
    return "\n".join(lines)


def _anchors(criterion) -> str:
    return criterion.question + "\n" + "\n".join(f"{k}: {v}" for k, v in criterion.anchors.items())


def build_settings(config: ReviewConfig, dimensions: int):
    """The Argilla dataset settings for review."""
    import argilla as rg

    rubric, taxonomy = default_rubric(), default_taxonomy()
    questions = []
    for c in rubric.criteria:
        if c.kind == "binary":
            questions.append(rg.LabelQuestion(name=c.id, title=c.name, description=_anchors(c),
                                              labels={"yes": "yes", "no": "no"}, required=False))
        else:
            questions.append(rg.RatingQuestion(name=c.id, title=c.name, description=_anchors(c),
                                               values=list(range(c.min, c.max + 1)), required=False))
    questions += [
        rg.LabelQuestion(name=rubric.benign.id, title=rubric.benign.name, required=False,
                         description=rubric.benign.question + "\n" + "\n".join(
                             f"{o.id}: {o.description}" for o in rubric.benign.options),
                         labels={o.id: o.id.replace("_", " ") for o in rubric.benign.options}),
        rg.LabelQuestion(name="strategy", title="Strategy used", required=False,
                         description="Which intervention strategy does the response actually follow?",
                         labels={s.id: s.name for s in taxonomy.strategies} | {"none": "none"}),
        rg.LabelQuestion(name="decision", title="Decision", labels=list(DECISIONS), required=True,
                         description="accept as is, reject, or edit (write the corrected response below)"),
        rg.TextQuestion(name="corrected_response", title="Corrected response", required=False, use_markdown=True,
                        description="Only when you chose edit: the full response as it should read."),
    ]
    metadata = [
        rg.TermsMetadataProperty(name="domain", options=taxonomy.domain_ids()),
        # category and intent take any value: imported seeds may carry their own
        rg.TermsMetadataProperty(name="category"),
        rg.TermsMetadataProperty(name="label", options=["harmful", "benign"]),
        rg.TermsMetadataProperty(name="intent"),
        rg.TermsMetadataProperty(name="planned_strategy", options=[s.id for s in taxonomy.strategies]),
        rg.TermsMetadataProperty(name="locale"),
        rg.TermsMetadataProperty(name="split"),
        rg.TermsMetadataProperty(name="checks_passed", options=["yes", "no"]),
        rg.TermsMetadataProperty(name="judge_model"),
    ]
    for c in rubric.criteria:
        metadata.append(rg.TermsMetadataProperty(name=f"judge_{c.id}", options=["yes", "no"]) if c.kind == "binary"
                        else rg.IntegerMetadataProperty(name=f"judge_{c.id}", min=c.min, max=c.max))
    metadata.append(rg.TermsMetadataProperty(name=f"judge_{rubric.benign.id}", options=rubric.benign.option_ids()))
    return rg.Settings(
        guidelines=guidelines(),
        fields=[rg.TextField(name="prompt", title="Prompt"),
                rg.TextField(name="response", title="Response", use_markdown=True),
                rg.TextField(name="critique", title="Self-critique", required=False),
                rg.TextField(name="baseline_response", title="Baseline response", required=False)],
        questions=questions,
        metadata=metadata,
        vectors=[rg.VectorField(name=VECTOR, title="Prompt embedding", dimensions=dimensions)],
        distribution=rg.TaskDistribution(min_submitted=config.min_submitted),
    )


def settings_signature(settings) -> dict[str, list]:
    """What must match for a dataset to hold our records: names, types, labels, scales, dimensions."""
    def question(q) -> tuple:
        options = getattr(q, "labels", None) or getattr(q, "values", None) or []
        return (q.name, type(q).__name__, tuple(str(o) for o in options))

    return {
        "fields": sorted((f.name, type(f).__name__) for f in settings.fields),
        "questions": sorted(question(q) for q in settings.questions),
        "metadata": sorted((m.name, type(m).__name__) for m in settings.metadata),
        "vectors": sorted((v.name, v.dimensions) for v in settings.vectors),
    }


def record_fields(record: Record) -> dict[str, str]:
    fields = {"prompt": record.prompt, "response": record.response or " ", "critique": record.critique,
              "baseline_response": record.baseline_response}
    return {k: v for k, v in fields.items() if v}


def _judge_value(criterion, value) -> str | int | None:
    """A judge score as the queue holds it: yes/no, or an integer on the criterion's scale (else left out)."""
    if value is None:
        return None
    if criterion.kind == "binary":
        return _yes_no(bool(value))
    return int(value) if criterion.min <= value <= criterion.max else None


def record_metadata(record: Record, split: str) -> dict[str, Any]:
    rubric = default_rubric()
    meta: dict[str, Any] = {"domain": record.domain, "category": record.category, "label": record.label,
                            "intent": record.intent, "planned_strategy": record.strategy, "locale": record.locale,
                            "split": split, "checks_passed": _yes_no(record.checks.passed),
                            "judge_model": record.scores.judge_model}
    if record.scores.compliance in rubric.benign.option_ids():
        meta[f"judge_{rubric.benign.id}"] = record.scores.compliance
    taxonomy = default_taxonomy()
    if meta["planned_strategy"] not in {s.id for s in taxonomy.strategies}:
        meta["planned_strategy"] = None
    for c in rubric.criteria:
        meta[f"judge_{c.id}"] = _judge_value(c, getattr(record.scores, c.id))
    return {k: v for k, v in meta.items() if v is not None}


def record_suggestions(record: Record) -> list[tuple[str, Any, str]]:
    """(question, value, agent): the judge's scores, and the strategy the pipeline planned."""
    rubric = default_rubric()
    judge = record.scores.judge_model or "judge"
    out = []
    for c in rubric.criteria:
        value = _judge_value(c, getattr(record.scores, c.id))
        if value is not None:
            out.append((c.id, value, judge))
    if record.scores.compliance in rubric.benign.option_ids():
        out.append((rubric.benign.id, record.scores.compliance, judge))
    if record.strategy in {s.id for s in default_taxonomy().strategies}:
        out.append(("strategy", record.strategy, record.generation.model or "pipeline"))
    return out
