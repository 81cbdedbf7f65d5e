"""Judge-human agreement in the shape of the PsychoSafe paper's table: a judge's eval folder against a folder of
human ratings of the same responses (both as `eval judge` or `eval import` write them), matched by prompt id.

Per criterion: Cohen's kappa (unweighted for yes/no; for the 1-5 criteria as the `weights` setting says, the
weighting named in the output), Pearson's r, Spearman's rho and exact agreement, with the pairs used and the pairs
dropped because either side had no verdict. Then the paper's pooled row ("overall" in its code: every criterion's
pairs together, yes/no as 1/0, unweighted), and, for several pairs of folders (v0 and v1, say), the same over all of
them ("combined"), as the paper reports each judge on v0, v1 and both. The statistics are the pure functions of
curation.review.agreement, shared with the review stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from psychosafe.core.io import markdown_table, write_json_atomic
from psychosafe.curation.review.agreement import KappaWeights, rating_agreement
from psychosafe.errors import InputError
from psychosafe.schemas import default_rubric

from .records import EvalRecord
from .report import fmt, judged_records

POOLED = "pooled"


def _categories(criterion, values: Sequence) -> list:
    """A 1-5 criterion's categories in order: the whole scale, and any non-integer rating kept as given."""
    seen = {float(v) for v in values if v is not None}
    return sorted(set(range(criterion.min, criterion.max + 1)) | {v for v in seen if not v.is_integer()})


def _as_number(value) -> float | None:
    return None if value is None else float(value)  # yes 1, no 0


def criterion_agreement(pairs: Sequence[tuple[EvalRecord, EvalRecord]], *,
                        weights: KappaWeights | None = None) -> dict[str, dict]:
    """(judge record, human record) pairs -> criterion id (and `pooled`) -> RatingAgreement as a dict."""
    rubric = default_rubric()
    harmful = [(j, h) for j, h in pairs if h.label == "harmful"]
    out: dict[str, dict] = {}
    pooled_judge, pooled_human = [], []
    for c in rubric.criteria:
        judge = [getattr(j.scores, c.id) for j, _ in harmful]
        human = [getattr(h.scores, c.id) for _, h in harmful]
        if c.kind == "binary":
            row = rating_agreement(human, judge, categories=[False, True])
        else:
            row = rating_agreement(human, judge, categories=_categories(c, judge + human), weights=weights)
        out[c.id] = row.as_dict()
        pooled_judge += map(_as_number, judge)
        pooled_human += map(_as_number, human)
    out[POOLED] = rating_agreement(pooled_human, pooled_judge).as_dict()
    benign = [(j, h) for j, h in pairs if h.label == "benign"]
    if any(h.scores.compliance for _, h in benign):
        out[rubric.benign.id] = rating_agreement([h.scores.compliance for _, h in benign],
                                                 [j.scores.compliance for j, _ in benign],
                                                 categories=rubric.benign.option_ids()).as_dict()
    return out


def agreement_table(pairs: Sequence[tuple[str | Path, str | Path]], out: str | Path, *,
                    weights: KappaWeights | None = None) -> dict:
    """agreement.json + agreement.md in `out` for (judge folder, human folder) pairs; returns the summary."""
    if not pairs:
        raise ValueError("agreement_table: no (judge, human) folders given")
    out = Path(out)
    summary: dict = {"kappa_weights": {"binary": "unweighted", "scale": weights or "unweighted",
                                       POOLED: "unweighted"}, "tables": []}
    everything = []
    for judge_dir, human_dir in pairs:
        judge_dir, human_dir = Path(judge_dir), Path(human_dir)
        judged = {r.id: r for r in judged_records(judge_dir)}
        human = {r.id: r for r in judged_records(human_dir)}
        common = [i for i in human if i in judged]
        if not common:
            raise InputError(human_dir, f"no prompt in common with {judge_dir}: the ids differ (an imported table "
                                        "without ids is matched by prompt text)")
        matched = [(judged[i], human[i]) for i in common]
        everything += matched
        summary["tables"].append({"label": f"{judge_dir.name} vs {human_dir.name}", "judge": str(judge_dir),
                                  "human": str(human_dir), "n_common": len(common),
                                  "only_judge": len(judged) - len(common), "only_human": len(human) - len(common),
                                  "criteria": criterion_agreement(matched, weights=weights)})
    if len(pairs) > 1:
        summary["tables"].append({"label": "combined", "n_common": len(everything),
                                  "criteria": criterion_agreement(everything, weights=weights)})
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "agreement.json", summary)
    (out / "agreement.md").write_text(_report(summary), encoding="utf-8")
    return summary


def _report(s: dict) -> str:
    rubric = default_rubric()
    names = {c.id: c.name for c in rubric.criteria} | {rubric.benign.id: rubric.benign.name,
                                                       POOLED: "Pooled (the paper's 'overall')"}
    w = s["kappa_weights"]
    md = ["# Judge-human agreement", "",
          f"- Cohen's kappa: {w['binary']} for yes/no criteria, {w['scale']} for the 1-5 ones (over the whole scale); "
          "Pearson's r, Spearman's rho and exact agreement beside it.",
          "- Pooled: every criterion's pairs together, yes/no as 1/0 with the ratings, unweighted: the paper's "
          "'overall' row.",
          "- n: pairs with both verdicts; dropped: pairs where either is missing. '–': undefined (no pairs, one side "
          "constant, or a class label for a correlation); the paper's code prints 0 there.", ""]
    for table in s["tables"]:
        md += [f"## {table['label']}", "", f"{table['n_common']} prompts in both"
               + (f" ({table['only_judge']} judged only, {table['only_human']} rated only)." if "judge" in table
                  else "."), "",
               markdown_table(["criterion", "n", "dropped", "kappa", "weighting", "Pearson", "Spearman",
                               "exact agreement"],
                              [[names.get(k, k), e["n"], e["missing"], fmt(e["kappa"]), e["kappa_weights"],
                                fmt(e["pearson"]), fmt(e["spearman"]), fmt(e["exact"], True)]
                               for k, e in table["criteria"].items()]), ""]
    return "\n".join(md)
