"""The agreement figures of a pull, per rubric criterion (the four of harmful prompts, the conversation criteria
where the run holds conversations, and compliance for benign ones): the annotators against the LLM judge on the same
records, the annotators among themselves, each annotator against the others' majority and against the judge, and the
counts behind them (the statistics themselves are in agreement.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from psychosafe.schemas import Record, default_rubric

from .agreement import (
    Agreement,
    AnnotatorAgreement,
    KappaWeights,
    alpha_agreement,
    kappa_agreement,
    normalize_label,
    per_annotator,
)
from .answers import QueueRecord, answer_as_class, answer_as_score


@dataclass
class CriterionAgreement:
    criterion: str
    kind: str  # binary, scale, classes
    categories: list  # in order; the rows and columns of `confusion`
    human_vs_judge: Agreement  # every annotator's answer paired with the judge's score: the one trust is decided on
    inter_annotator: Agreement  # Krippendorff's alpha over the records two or more annotators answered
    annotators: dict[str, AnnotatorAgreement]
    kappas: dict[str, Agreement] = field(default_factory=dict)  # a scale: unweighted, linear, quadratic side by side
    confusion: list[list[int]] = field(default_factory=list)  # [human category][judge category] -> pairs

    def as_dict(self) -> dict:
        return {"criterion": self.criterion, "kind": self.kind, "categories": self.categories,
                "human_vs_judge": self.human_vs_judge.as_dict(), "inter_annotator": self.inter_annotator.as_dict(),
                "kappas": {k: a.as_dict() for k, a in self.kappas.items()},
                "annotators": {u: a.as_dict() for u, a in self.annotators.items()}, "confusion": self.confusion}


def _questions(weights: KappaWeights, *, conversation: bool = False) -> list[tuple]:
    """(criterion id, label, kind, categories, read an answer, kappa weights, alpha level) for every question (the
    conversation criteria with `conversation`)."""
    rubric = default_rubric()
    out = []
    for c in rubric.criteria + (rubric.conversation if conversation else []):
        if c.kind == "binary":
            out.append((c.id, "harmful", "binary", [False, True], lambda v, c=c: answer_as_score(c, v), None,
                        "nominal"))
        else:
            out.append((c.id, "harmful", "scale", list(range(c.min, c.max + 1)),
                        lambda v, c=c: answer_as_score(c, v), weights, "interval"))
    options = rubric.benign.option_ids()
    out.append((rubric.benign.id, "benign", "classes", options, lambda v: answer_as_class(options, v), None,
                "nominal"))
    return out


def agreement_figures(records: list[Record], queue_records: list[QueueRecord], *,
                      scale_weights: KappaWeights = "quadratic") -> dict[str, CriterionAgreement]:
    """Per criterion. Human vs judge: Cohen's kappa over (annotator answer, judge score) pairs, unweighted for
    yes/no and the compliance classes, `scale_weights` on the 1-5 scales (all three weightings are kept beside it).
    Between annotators: Krippendorff's alpha, nominal, or interval on the scales. A missing answer or score drops
    its pair and is counted. The conversation criteria are measured where the run holds a conversation (without
    one, the verdict does not name them, and a criterion it does not name is not trusted)."""
    by_id = {r.id: r for r in records}
    out = {}
    conversation = any(r.is_conversation for r in records)
    for criterion, label, kind, categories, read, weights, level in _questions(scale_weights,
                                                                               conversation=conversation):
        ratings: dict[str, dict[str, object]] = {}
        judge: dict[str, object] = {}
        for q in queue_records:
            record = by_id.get(q.id)
            if record is None or record.label != label:  # queued by another run, or the other label's queue
                continue
            # an answer the question does not take (a typo in imported data) counts as missing
            ratings[q.id] = {a.user: read(a.values.get(criterion)) for a in q.submitted()}
            judged = getattr(record.scores, criterion)
            judge[q.id] = read(judged) if judged is not None else None
        humans = [v for item in ratings for v in ratings[item].values()]
        judges = [judge[item] for item in ratings for _ in ratings[item]]
        kappas = {}
        if kind == "scale":
            kappas = {name: kappa_agreement(humans, judges, categories=categories, weights=w)
                      for name, w in (("unweighted", None), ("linear", "linear"), ("quadratic", "quadratic"))}
        main = kappa_agreement(humans, judges, categories=categories, weights=weights)
        confusion = [[0] * len(categories) for _ in categories]
        index = {normalize_label(c): i for i, c in enumerate(categories)}
        for h, j in zip(humans, judges):
            if h is not None and j is not None:
                confusion[index[normalize_label(h)]][index[normalize_label(j)]] += 1
        alpha = alpha_agreement((list(r.values()) for r in ratings.values()), level=level)
        out[criterion] = CriterionAgreement(criterion, kind, categories, main, alpha,
                                            per_annotator(ratings, judge, categories=categories, weights=weights),
                                            kappas, confusion)
    return out


def reviewed_count(records: list[Record], queue_records: list[QueueRecord]) -> int:
    """Records of the run with at least one submitted answer."""
    ids = {r.id for r in records}
    return sum(1 for q in queue_records if q.id in ids and q.submitted())
