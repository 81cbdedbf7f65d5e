"""What the review queue holds for each record, as plain data (no argilla types): the record's id, fields and
metadata, and each annotator's answers. Merge and agreement read only these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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

    def submitted(self) -> list[Annotation]:
        return sorted((a for a in self.annotations if a.status == "submitted"), key=lambda a: a.user)


def answer_as_score(criterion, value: Any) -> bool | int | None:
    """An annotator's answer to a rubric criterion as a score: yes/no as a bool, a rating as an int."""
    if value is None:
        return None
    if criterion.kind == "binary":
        return value == "yes" if isinstance(value, str) else bool(value)
    return int(value)
