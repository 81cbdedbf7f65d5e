"""Judge-score thresholds: a judged record below the configured minimum is set aside; unjudged ones pass."""

from __future__ import annotations

from psychosafe.schemas import Record, default_rubric

from .steps import StepResult, reject


def score_failures(record: Record, min_scores: dict[str, bool | int]) -> list[str]:
    """Why a judged record falls short, one phrase per criterion; [] when it passes or has no scores (an empty
    `min_scores` turns the judge filter off)."""
    if not min_scores:
        return []
    return default_rubric().shortfalls(record.scores, record.label, thresholds=min_scores, missing="pass")


def filter_scores(records: list[Record], min_scores: dict[str, bool | int] | None = None,
                  *, name: str = "scores") -> StepResult:
    """`min_scores`: criterion id -> lowest passing value; None: the rubric's own thresholds; {}: no filter."""
    min_scores = default_rubric().thresholds if min_scores is None else min_scores
    kept, rejected = [], []
    for r in records:
        failures = score_failures(r, min_scores)
        if failures:
            rejected.append(reject(r, name, "score_below_threshold",
                                   f"judge score below threshold: {', '.join(failures)}"))
        else:
            kept.append(r)
    judged = sum(1 for r in records if any(getattr(r.scores, c.id) is not None for c in default_rubric().criteria)
                 or r.scores.compliance is not None)
    return StepResult(name, kept, rejected, notes={"judged": judged, "unjudged": len(records) - judged,
                                                   "min_scores": dict(min_scores)})
