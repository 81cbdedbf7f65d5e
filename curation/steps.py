"""What every curation step returns: what it kept, what it dropped and why (datatrove-style)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from psychosafe.schemas import Record, Rejected, default_rubric


@dataclass
class StepResult:
    name: str
    kept: list[Record]
    rejected: list[Rejected] = field(default_factory=list)
    seconds: float = 0.0
    notes: dict = field(default_factory=dict)

    def counts(self) -> dict:
        reasons = Counter(r.code for r in self.rejected)
        return {
            "in": len(self.kept) + len(self.rejected),
            "kept": len(self.kept),
            "rejected": len(self.rejected),
            "reasons": dict(reasons),
            "kept_per_domain": dict(Counter(r.domain for r in self.kept)),
            "kept_per_category": dict(Counter(f"{r.domain}/{r.category or '-'}" for r in self.kept)),
            **self.notes,
        }


def reject(record: Record, stage: str, code: str, reason: str, **extra) -> Rejected:
    return Rejected.of(record, stage, code, reason, **extra)


def quality(record: Record) -> float | None:
    """Overall refusal quality over the criteria the judge scored (Rubric.overall_quality, partial)."""
    return default_rubric().overall_quality(record.scores, partial=True)


def best_first(record: Record) -> tuple[float, str]:
    """Sort key: the best-scored record first (unscored last), ties by id."""
    q = quality(record)
    return (-q if q is not None else 1.0, record.id)
