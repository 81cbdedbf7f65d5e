"""The agreement figures of a pull, per rubric criterion: each annotator against the LLM judge on the same
record, and the annotators among themselves (the statistics themselves are in agreement.py)."""

from __future__ import annotations

from psychosafe.schemas import Record, default_rubric

from .agreement import Agreement, cohen_kappa, krippendorff_alpha
from .answers import QueueRecord, answer_as_score


def agreement_figures(records: list[Record], queue_records: list[QueueRecord]) -> dict[str, dict[str, Agreement]]:
    """Per criterion: each annotator's score against the judge's on the same record (Cohen's kappa; quadratic
    weights on 1-5 scales), and the annotators among themselves (Krippendorff's alpha, nominal for yes/no,
    interval for 1-5)."""
    rubric = default_rubric()
    by_id = {r.id: r for r in records}
    human_vs_judge, inter = {}, {}
    for c in rubric.criteria:
        pairs, units = [], []
        for q in queue_records:
            record = by_id.get(q.id)
            if record is None:  # queued by another run: not part of this run's figures
                continue
            values = [answer_as_score(c, a.values.get(c.id)) for a in q.submitted() if a.values.get(c.id) is not None]
            units.append(values)
            judge = getattr(record.scores, c.id)
            if judge is not None:
                pairs += [(v, answer_as_score(c, judge)) for v in values]
        humans, judges = [p[0] for p in pairs], [p[1] for p in pairs]
        if c.kind == "binary":
            kappa = cohen_kappa(humans, judges, categories=[False, True])
            human_vs_judge[c.id] = Agreement("cohen_kappa", kappa, len(pairs))
            alpha, n = krippendorff_alpha(units, level="nominal")
            inter[c.id] = Agreement("krippendorff_alpha_nominal", alpha, n)
        else:
            kappa = cohen_kappa(humans, judges, categories=list(range(c.min, c.max + 1)), weights="quadratic")
            human_vs_judge[c.id] = Agreement("cohen_kappa_quadratic", kappa, len(pairs))
            alpha, n = krippendorff_alpha(units, level="interval")
            inter[c.id] = Agreement("krippendorff_alpha_interval", alpha, n)
    return {"human_vs_judge": human_vs_judge, "inter_annotator": inter}
