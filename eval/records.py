"""The eval record: the corpus Record plus what an eval needs to group and trace a row.

Benchmark prompts (XSTest, SORRY-Bench, a user's JSONL) often belong to none of the taxonomy's domains,
so `domain` may be empty here; every other field, and every function that takes a Record (the judge, the
rule-based checks), is the corpus's own. The `datasets.Features` are derived from the model, as for Record.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import datasets
from pydantic import Field, SerializeAsAny, field_validator, model_validator

from psychosafe.errors import InputError
from psychosafe.schemas import (
    Record,
    Rejected,
    Scores,
    default_rubric,
    default_taxonomy,
    features_of,
    records_to_dataset,
    row_to_record,
)

ComplianceClass = Literal["full_compliance", "full_refusal", "partial_refusal"]
# Benchmarks whose question is "did the model comply?" rather than "how good is the refusal?"
COMPLIANCE_BENCHMARKS = ("xstest", "sorry-bench")
# An eval folder's datasets: the prompts with responses, and the same judged (scores, checks, string-match class)
GENERATED, JUDGED = "generated", "judged"


class EvalScores(Scores):
    """Scores as an eval holds them. The 1-5 ratings are numbers rather than integers, so that another judge's
    non-integer rating (the paper's parser reads "Rating: 4.5") can be kept as given; a rating outside its
    criterion's range is refused, whoever gave it (eval.ratings reads a table's cells into these)."""

    grounding: float | None = None  # type: ignore[assignment]
    relevance: float | None = None  # type: ignore[assignment]
    continuity: float | None = None  # type: ignore[assignment]  # a conversation criterion, 1-5

    @model_validator(mode="after")
    def _in_range(self) -> "EvalScores":
        rubric = default_rubric()
        for c in rubric.criteria + rubric.conversation:
            value = getattr(self, c.id)
            if c.kind == "scale" and value is not None and not c.min <= value <= c.max:
                raise ValueError(f"{c.id} = {value:g} is outside its range {c.min}-{c.max}")
        return self

    @classmethod
    def of(cls, scores: Scores) -> "EvalScores":
        return scores if isinstance(scores, cls) else cls.model_validate(scores.model_dump())


class EvalRecord(Record):
    """A prompt to evaluate on, or a conversation: before generation a conversation prompt is its user turns alone
    (two in a row, none answered yet); the model under test then answers them one by one, each answer in view of
    its own earlier ones (eval/generate.py)."""

    unanswered_user_turns: ClassVar[bool] = True
    domain: str | None = None  # type: ignore[assignment]
    scores: EvalScores = Field(default_factory=EvalScores)  # type: ignore[assignment]
    turn_scores: list[EvalScores] = Field(default_factory=list, description=(
        "a conversation: the judge's scores of each assistant turn, in order, each judged with the turns before it "
        "in view (eval/conversations.py); the last is `scores`. Empty for a single prompt"))
    benchmark: str = "prompts"
    group: str = ""  # what results are broken down by: XSTest type, SORRY-Bench category, or the domain
    style: str | None = None  # SORRY-Bench prompt_style ("base", or a mutation such as "slang")
    variant: str | None = None  # system prompt variant used to generate the response
    adapter: str | None = None  # LoRA adapter folder the response was generated with
    string_match: str | None = None  # XSTest-style class by refusal-marker matching (ComplianceClass)

    @field_validator("domain")
    @classmethod
    def _known_domain(cls, value: str | None) -> str | None:
        known = default_taxonomy().domain_ids()
        if value is not None and value not in known:
            raise ValueError(f"unknown domain '{value}'; expected one of {known} or none")
        return value

    @field_validator("scores", mode="before")
    @classmethod
    def _eval_scores(cls, value):
        # the judge and the tests hand over the corpus's Scores: the same fields, checked again here
        return value.model_dump() if isinstance(value, Scores) and not isinstance(value, EvalScores) else value


EVAL_FEATURES = features_of(EvalRecord)


class EvalRejected(Rejected):
    """A prompt set aside by an eval step: the record is an EvalRecord."""

    record: SerializeAsAny[EvalRecord] | None = None


def eval_dataset(records: list[EvalRecord]) -> datasets.Dataset:
    return records_to_dataset(records, EVAL_FEATURES)


def save_eval(records: list[EvalRecord], folder: Path) -> Path:
    """save_to_disk (one shard) and a parquet copy beside it."""
    ds = eval_dataset(records)
    ds.save_to_disk(str(folder), num_shards=1)
    ds.to_parquet(str(folder.with_suffix(".parquet")))
    return folder


def load_eval(folder: Path) -> list[EvalRecord]:
    """The eval records in `folder`; a row that is not a valid EvalRecord (a rating off its scale, say) is an
    InputError naming the row, its id and the field."""
    if not (folder / "dataset_info.json").is_file():
        raise InputError(folder, "no eval dataset here (expected a folder written by `psychosafe eval generate` or "
                                 "`psychosafe eval import`)")
    records = []
    for n, row in enumerate(datasets.load_from_disk(str(folder)).to_list(), start=1):
        try:
            records.append(row_to_record(row, EvalRecord))
        except ValueError as exc:
            raise InputError(folder, f"row {n} (id {row.get('id')!r}): {exc}") from None
    return records
