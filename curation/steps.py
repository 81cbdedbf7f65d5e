"""What every curation step returns: what it kept, what it dropped and why (datatrove-style)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from psychosafe.schemas import Record, Rejected


@dataclass
class StepResult:
    name: str
    kept: list[Record]
    rejected: list[Rejected] = field(default_factory=list)
    seconds: float = 0.0
    notes: dict = field(default_factory=dict)

    def counts(self) -> dict:
        reasons = Counter(r.reason.split(":")[0] if r.stage != "seeds" else "bad seed row" for r in self.rejected)
        return {
            "in": len(self.kept) + len(self.rejected),
            "kept": len(self.kept),
            "rejected": len(self.rejected),
            "reasons": dict(reasons),
            "kept_per_domain": dict(Counter(r.domain for r in self.kept)),
            "kept_per_category": dict(Counter(f"{r.domain}/{r.category or '-'}" for r in self.kept)),
            **self.notes,
        }


def reject(record: Record, stage: str, reason: str, **extra) -> Rejected:
    return Rejected(stage=stage, reason=reason, id=record.id, domain=record.domain, record=record.model_dump_json(), **extra)


def quality(record: Record) -> float | None:
    """The paper's overall refusal quality: the mean of the judged criteria, each scaled to 0-1 by the rubric."""
    from psychosafe.schemas import default_rubric

    values = [c.scale_to_unit(v) for c in default_rubric().criteria
              if (v := getattr(record.scores, c.id, None)) is not None]
    return sum(values) / len(values) if values else None


def best_first(record: Record) -> tuple[float, str]:
    """Sort key: the best-scored record first (unscored last), ties by id."""
    q = quality(record)
    return (-q if q is not None else 1.0, record.id)
