"""What the review queue holds for each record, as plain data (no argilla types): the record's id, fields and
metadata, and each annotator's answers. Merge and agreement read only these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .agreement import normalize_label


@dataclass
class Annotation:
    user: str
    status: str  # submitted, draft, discarded
    values: dict[str, Any]


@dataclass
class QueueRecord:
    id: str
    fields: dict[str, Any]
    metadata: dict[str, Any]
    annotations: list[Annotation] = field(default_factory=list)
    label: str = "harmful"  # the queue it came from (settings.LABELS)

    def submitted(self) -> list[Annotation]:
        return sorted((a for a in self.annotations if a.status == "submitted"), key=lambda a: a.user)


def answer_as_score(criterion, value: Any) -> bool | int | None:
    """An annotator's answer to a rubric criterion as a score: yes/no (any case) as a bool, a rating as an int;
    None when missing or not an answer the criterion takes."""
    value = normalize_label(value)
    if value is None:
        return None
    if criterion.kind == "binary":
        return value if isinstance(value, bool) else None
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if criterion.min <= value <= criterion.max else None


def answer_as_class(options: list[str], value: Any) -> str | None:
    """An answer to a class question (the benign compliance classes) as one of `options`, read case-insensitively;
    None when missing or not one of them."""
    value = normalize_label(value)
    by_folded = {o.casefold(): o for o in options}
    return by_folded.get(value) if isinstance(value, str) else None
