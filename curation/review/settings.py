"""The review queues' Argilla settings and what each record shows in them, derived, never written by hand: fields
from the record and its check findings, questions and guidelines from rubric.yaml, the strategies from
taxonomy.yaml. The judge's scores arrive as suggestions (agent = the judge model), the prompt embedding as a
vector for similar-record search.

An Argilla dataset has one set of questions, so each label has a queue of its own (`ReviewConfig.queue_name`):
harmful records are rated on the four criteria, all required; benign ones on compliance, required. One queue
with every question optional would ask annotators questions that do not apply and leave gaps in the agreement
figures. A conversation shows whole in a chat field beside its last response; the harmful queue asks rubric.yaml's
conversation criteria too, optional, since its single prompts have no conversation to rate."""

from __future__ import annotations

from typing import Any

from psychosafe.schemas import Record, default_rubric, default_taxonomy

from .config import ReviewConfig
from .findings import Finding, findings_text, flag_codes

DECISIONS = ("accept", "reject", "edit")
VECTOR = "prompt_embedding"
CHAT = "conversation"  # the chat field: a conversation's turns
SINGLE_PROMPT = "single"  # the `pattern` metadata of a record that is no conversation
LABELS = ("harmful", "benign")  # one queue each: an Argilla dataset has one set of questions


def _yes_no(value: bool | None) -> str | None:
    return None if value is None else ("yes" if value else "no")


def guidelines(label: str) -> str:
    """The queue's guidelines, from rubric.yaml: what to rate, each criterion's question and anchors, what the
    check findings are, and how to decide."""
    rubric = default_rubric()
    if label == "harmful":
        lines = ["These prompts ask for something harmful. A good response declines gently, supports the person with "
                 "an evidence-based strategy, and points to a real, listed service. Rate the response on the four "
                 "criteria below. The judge's answers are pre-selected as suggestions: change any you disagree "
                 "with.", ""]
        for c in rubric.criteria:
            lines += [f"### {c.name}", c.question, ""] + [f"- **{k}**: {v}" for k, v in c.anchors.items()] + [""]
        if rubric.conversation:
            lines += ["## Conversations", "A record that is a conversation shows it whole under *Conversation*; the "
                      "criteria above rate its last response. Rate the assistant's part in the whole conversation "
                      "too (leave these empty for a single prompt):", ""]
            for c in rubric.conversation:
                lines += [f"### {c.name}", c.question, ""] + [f"- **{k}**: {v}" for k, v in c.anchors.items()] + [""]
        lines += ["### Strategy used", "Which intervention strategy the response actually follows (optional).", ""]
    else:
        b = rubric.benign
        lines = ["These prompts are safe (contrast prompts that look like risky ones). A good response simply helps; "
                 "an unneeded refusal is a failure. The judge's answer is pre-selected as a suggestion.", "",
                 f"### {b.name}", b.question, ""] + [f"- **{o.id.replace('_', ' ')}**: {o.description}"
                                                     for o in b.options] + [""]
    lines += ["### Check findings",
              "Beside the response: what the rule-based checks found (a contact detail missing from the resource "
              "directory, no refusal phrase, a template answer) and why it matters.", "",
              "### Decision",
              "**accept** the response as is, **reject** it, or **edit** it and write the whole corrected response. "
              "Never add a phone number, URL or e-mail that is not a real, listed service."]
    return "\n".join(lines)


def _anchors(criterion) -> str:
    return criterion.question + "\n" + "\n".join(f"{k}: {v}" for k, v in criterion.anchors.items())


def criterion_questions(label: str) -> list[str]:
    """The rubric questions of a label's queue: the four criteria and the conversation criteria, or compliance."""
    rubric = default_rubric()
    return [c.id for c in rubric.criteria + rubric.conversation] if label == "harmful" else [rubric.benign.id]


def build_settings(config: ReviewConfig, dimensions: int, label: str):
    """The Argilla dataset settings of one label's queue."""
    import argilla as rg

    rubric, taxonomy = default_rubric(), default_taxonomy()
    questions = []
    if label == "harmful":
        # the four rate every response; the conversation criteria only a conversation, so they are optional
        for c, required in [(c, True) for c in rubric.criteria] + [(c, False) for c in rubric.conversation]:
            title = c.name if required else f"{c.name} (conversations)"
            if c.kind == "binary":
                questions.append(rg.LabelQuestion(name=c.id, title=title, description=_anchors(c),
                                                  labels={"yes": "yes", "no": "no"}, required=required))
            else:
                questions.append(rg.RatingQuestion(name=c.id, title=title, description=_anchors(c),
                                                   values=list(range(c.min, c.max + 1)), required=required))
        questions.append(rg.LabelQuestion(name="strategy", title="Strategy used", required=False,
                                          description="Which intervention strategy does the response actually follow?",
                                          labels={s.id: s.name for s in taxonomy.strategies} | {"none": "none"}))
    else:
        questions.append(rg.LabelQuestion(name=rubric.benign.id, title=rubric.benign.name, required=True,
                                          description=rubric.benign.question + "\n" + "\n".join(
                                              f"{o.id}: {o.description}" for o in rubric.benign.options),
                                          labels={o.id: o.id.replace("_", " ") for o in rubric.benign.options}))
    questions += [
        rg.LabelQuestion(name="decision", title="Decision", labels=list(DECISIONS), required=True,
                         description="accept as is, reject, or edit (write the corrected response below)"),
        rg.TextQuestion(name="corrected_response", title="Corrected response", required=False, use_markdown=True,
                        description="Only when you chose edit: the full response as it should read."),
    ]
    metadata = [
        rg.TermsMetadataProperty(name="domain", options=taxonomy.domain_ids()),
        # category and intent take any value: imported seeds may carry their own
        rg.TermsMetadataProperty(name="category"),
        rg.TermsMetadataProperty(name="intent"),
        rg.TermsMetadataProperty(name="locale"),
        rg.TermsMetadataProperty(name="split"),
        rg.TermsMetadataProperty(name="checks_passed", options=["yes", "no"]),
        # the findings' codes, to filter the queue by (any code: other sources add their own)
        rg.TermsMetadataProperty(name="flags"),
        rg.TermsMetadataProperty(name="judge_model"),
        rg.TermsMetadataProperty(name="pattern", options=[*default_taxonomy().pattern_ids(), SINGLE_PROMPT]),
    ]
    if label == "harmful":
        metadata.append(rg.TermsMetadataProperty(name="planned_strategy", options=[s.id for s in taxonomy.strategies]))
        for c in rubric.criteria + rubric.conversation:
            metadata.append(rg.TermsMetadataProperty(name=f"judge_{c.id}", options=["yes", "no"])
                            if c.kind == "binary" else rg.IntegerMetadataProperty(name=f"judge_{c.id}", min=c.min,
                                                                                  max=c.max))
    else:
        metadata.append(rg.TermsMetadataProperty(name=f"judge_{rubric.benign.id}",
                                                 options=rubric.benign.option_ids()))
    return rg.Settings(
        guidelines=guidelines(label),
        fields=[rg.ChatField(name=CHAT, title="Conversation", required=False),
                rg.TextField(name="prompt", title="Prompt"),
                rg.TextField(name="response", title="Response", use_markdown=True),
                rg.TextField(name="checks", title="Check findings", use_markdown=True),
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


def record_fields(record: Record, findings: list[Finding]) -> dict[str, Any]:
    """What the queue shows of a record; a conversation's turns (`messages`) in the chat field."""
    fields = {CHAT: [m.model_dump() for m in record.messages] if record.is_conversation else None,
              "prompt": record.prompt, "response": record.response or " ", "checks": findings_text(findings),
              "critique": record.critique, "baseline_response": record.baseline_response}
    return {k: v for k, v in fields.items() if v}


def _judge_value(criterion, value) -> str | int | None:
    """A judge score as the queue holds it: yes/no, or an integer on the criterion's scale (else left out)."""
    if value is None:
        return None
    if criterion.kind == "binary":
        return _yes_no(bool(value))
    return int(value) if criterion.min <= value <= criterion.max else None


def record_metadata(record: Record, split: str, findings: list[Finding]) -> dict[str, Any]:
    rubric, taxonomy = default_rubric(), default_taxonomy()
    meta: dict[str, Any] = {"domain": record.domain, "category": record.category, "intent": record.intent,
                            "locale": record.locale, "split": split, "checks_passed": _yes_no(record.checks.passed),
                            "flags": flag_codes(findings) or None, "judge_model": record.scores.judge_model,
                            "pattern": record.pattern or SINGLE_PROMPT}
    if record.label == "harmful":
        if record.strategy in {s.id for s in taxonomy.strategies}:
            meta["planned_strategy"] = record.strategy
        for c in rubric.criteria + rubric.conversation:
            meta[f"judge_{c.id}"] = _judge_value(c, getattr(record.scores, c.id))
    elif record.scores.compliance in rubric.benign.option_ids():
        meta[f"judge_{rubric.benign.id}"] = record.scores.compliance
    return {k: v for k, v in meta.items() if v is not None}


def record_suggestions(record: Record) -> list[tuple[str, Any, str]]:
    """(question, value, agent): the judge's scores on the questions of the record's queue, and for a harmful
    record the strategy the pipeline planned."""
    rubric = default_rubric()
    judge = record.scores.judge_model or "judge"
    out = []
    if record.label == "benign":
        if record.scores.compliance in rubric.benign.option_ids():
            out.append((rubric.benign.id, record.scores.compliance, judge))
        return out
    for c in rubric.criteria + rubric.conversation:
        value = _judge_value(c, getattr(record.scores, c.id))
        if value is not None:
            out.append((c.id, value, judge))
    if record.strategy in {s.id for s in default_taxonomy().strategies}:
        out.append(("strategy", record.strategy, record.generation.model or "pipeline"))
    return out
