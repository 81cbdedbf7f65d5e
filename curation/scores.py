"""Judge-score thresholds: a judged record below the configured minimum is set aside; unjudged ones pass.

The judge is trusted only where humans agree with it. `review pull` measures Cohen's kappa between the judge and
the annotators per criterion and writes the verdict (`JudgeTrust`) into the run (review/judge_trust.json); a
criterion found untrusted no longer filters: a record that falls short on it alone is kept and left for human
review (review push queues it, publish refuses it until a person has looked). Without a verdict, the judge
filters on every configured criterion, as before any review.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, ValidationError

from psychosafe.core.runs import RunFolder
from psychosafe.errors import InputError
from psychosafe.schemas import Record, default_rubric

from .steps import StepResult, reject

JUDGE_TRUST_FILE = "judge_trust.json"  # in the run's review/ folder, written by `review pull`


class CriterionTrust(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str  # cohen_kappa, or cohen_kappa_quadratic / _linear on a 1-5 scale
    kappa: float | None  # None: undefined (no pairs, or one category only)
    pairs: int  # (annotator answer, judge score) pairs it was measured on
    trusted: bool
    why: str  # for people: the figure against the threshold, or what is missing


class JudgeTrust(BaseModel):
    """Which of the judge's criteria may decide a record without a person: those whose kappa with the annotators
    reaches `min_kappa`, once at least `min_reviewed` records have a human answer."""

    model_config = ConfigDict(extra="forbid")

    min_kappa: float
    min_reviewed: int
    reviewed: int  # records of the run with at least one submitted human answer
    judge_models: list[str] = []
    criteria: dict[str, CriterionTrust]

    def trusts(self, criterion_id: str) -> bool:
        """A criterion the verdict does not know (a new one in rubric.yaml) is not trusted."""
        found = self.criteria.get(criterion_id)
        return bool(found and found.trusted)

    def untrusted(self) -> list[str]:
        return [c for c, t in self.criteria.items() if not t.trusted]


def decide_trust(kappas: dict[str, tuple[str, float | None, int]], *, reviewed: int, min_kappa: float,
                 min_reviewed: int, judge_models: list[str] | None = None) -> JudgeTrust:
    """The policy: `kappas` is criterion -> (metric, kappa, pairs) between the judge and the annotators."""
    criteria = {}
    for criterion, (metric, kappa, pairs) in kappas.items():
        if reviewed < min_reviewed:
            why = f"only {reviewed} reviewed record(s); {min_reviewed} needed before any criterion is trusted"
        elif kappa is None:
            why = f"kappa undefined on {pairs} pair(s) (no pairs, or every answer the same)"
        elif kappa < min_kappa:
            why = f"kappa {kappa:.2f} < {min_kappa:g}"
        else:
            why = f"kappa {kappa:.2f} >= {min_kappa:g}"
        trusted = reviewed >= min_reviewed and kappa is not None and kappa >= min_kappa
        criteria[criterion] = CriterionTrust(metric=metric, kappa=kappa, pairs=pairs, trusted=trusted, why=why)
    return JudgeTrust(min_kappa=min_kappa, min_reviewed=min_reviewed, reviewed=reviewed,
                      judge_models=sorted(judge_models or []), criteria=criteria)


def read_judge_trust(run: RunFolder) -> JudgeTrust | None:
    """The run's verdict on its judge, or None when no review was pulled."""
    path = run.review / JUDGE_TRUST_FILE
    if not path.is_file():
        return None
    try:
        return JudgeTrust.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON: {exc.msg}", line=exc.lineno) from None
    except ValidationError as exc:
        raise InputError(path, "not a judge-trust verdict as `review pull` writes it: " + "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None


def shortfalls_by_criterion(record: Record, min_scores: dict[str, bool | int] | None = None) -> dict[str, str]:
    """criterion id -> why the judged record falls short on it ({} when it passes or has no scores). A benign
    record is held to the compliance criterion, a conversation to the conversation criteria too; `min_scores` None:
    the rubric's thresholds; {}: no filter."""
    rubric = default_rubric()
    min_scores = rubric.thresholds if min_scores is None else min_scores
    if not min_scores:
        return {}
    if record.label == "benign":
        phrases = rubric.shortfalls(record.scores, record.label, thresholds=min_scores, missing="pass")
        return {rubric.benign.id: phrases[0]} if phrases else {}
    return {c: phrase for c, minimum in min_scores.items()
            for phrase in rubric.shortfalls(record.scores, record.label, thresholds={c: minimum}, missing="pass",
                                            conversation=record.is_conversation)}


def untrusted_shortfalls(record: Record, trust: JudgeTrust | None,
                         min_scores: dict[str, bool | int] | None = None) -> dict[str, str]:
    """The shortfalls that rest on criteria the judge is not trusted on: what a person has to decide instead."""
    if trust is None:
        return {}
    return {c: why for c, why in shortfalls_by_criterion(record, min_scores).items() if not trust.trusts(c)}


def score_failures(record: Record, min_scores: dict[str, bool | int], trust: JudgeTrust | None = None) -> list[str]:
    """Why a judged record falls short, one phrase per criterion the judge is trusted on; [] when it passes or has
    no scores (an empty `min_scores` turns the judge filter off)."""
    return [why for c, why in shortfalls_by_criterion(record, min_scores).items() if trust is None or trust.trusts(c)]


def filter_scores(records: list[Record], min_scores: dict[str, bool | int] | None = None,
                  *, name: str = "scores", trust: JudgeTrust | None = None) -> StepResult:
    """`min_scores`: criterion id -> lowest passing value; None: the rubric's own thresholds; {}: no filter.
    `trust`: the run's verdict on its judge (read_judge_trust); a record falling short only on criteria it does
    not trust is kept, and counted as left for review."""
    min_scores = default_rubric().thresholds if min_scores is None else min_scores
    kept, rejected, for_review = [], [], 0
    for r in records:
        failures = score_failures(r, min_scores, trust)
        if failures:
            rejected.append(reject(r, name, "score_below_threshold",
                                   f"judge score below threshold: {', '.join(failures)}"))
        else:
            kept.append(r)
            for_review += bool(untrusted_shortfalls(r, trust, min_scores))
    judged = sum(1 for r in records if any(getattr(r.scores, c.id) is not None for c in default_rubric().criteria)
                 or r.scores.compliance is not None)
    notes = {"judged": judged, "unjudged": len(records) - judged, "min_scores": dict(min_scores)}
    if trust is not None:
        notes["judge_trust"] = {"untrusted": trust.untrusted(), "left_for_review": for_review}
    return StepResult(name, kept, rejected, notes=notes)
