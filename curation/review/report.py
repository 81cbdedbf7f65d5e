"""review/report.md and its plots: statuses per domain, agreement per criterion (with a plot each: the answers
against the judge's, and every annotator against the others and the judge), which of the judge's criteria are
trusted, disagreements, and the records a person still has to look at."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from psychosafe.core.io import markdown_table, write_text_atomic
from psychosafe.schemas import default_taxonomy

from ..scores import JudgeTrust
from .figures import CriterionAgreement
from .merge import STATUSES, MergeResult


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_overview(path: Path, domains: list[str], per_domain: dict[str, Counter],
                   figures: dict[str, CriterionAgreement], trust: JudgeTrust) -> None:
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    bottom = [0] * len(domains)
    for status in STATUSES:
        values = [per_domain[d].get(status, 0) for d in domains]
        left.bar(domains, values, bottom=bottom, label=status)
        bottom = [b + v for b, v in zip(bottom, values)]
    left.set_title("Review status per domain")
    left.legend(fontsize=8, loc="upper right", framealpha=0.9)
    plt.setp(left.get_xticklabels(), rotation=20, ha="right")
    criteria = list(figures)
    width = 0.38
    for offset, kind, label in ((-width / 2, "human_vs_judge", "human vs judge (Cohen's kappa)"),
                                (width / 2, "inter_annotator", "between annotators (Krippendorff's alpha)")):
        values = [getattr(figures[c], kind) for c in criteria]
        bars = right.bar([i + offset for i in range(len(criteria))],
                         [a.value if a.value is not None else 0 for a in values], width, label=label)
        right.bar_label(bars, labels=[f"{a.value:.2f}\nn={a.n}" if a.value is not None else "" for a in values],
                        fontsize=7)
    right.set_xticks(range(len(criteria)),
                     [c + ("" if trust.trusts(c) else "\n(untrusted)") for c in criteria], fontsize=8)
    right.axhline(0, color="black", linewidth=0.8)
    right.axhline(trust.min_kappa, color="grey", linestyle="--", linewidth=0.8, label=f"trust at {trust.min_kappa:g}")
    right.set_ylim(-1.2, 1.3)  # room for the value labels
    right.set_title("Agreement per criterion (missing bar: undefined)")
    right.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_criterion(path: Path, f: CriterionAgreement, trust: JudgeTrust) -> None:
    """Left: how the annotators' answers meet the judge's (counts); right: each annotator's kappa with the others'
    majority and with the judge, beside the pooled kappa and the trust threshold."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6), gridspec_kw={"width_ratios": [1, 1.4]})
    names = [str(c).replace("_", " ") if not isinstance(c, bool) else ("yes" if c else "no") for c in f.categories]
    left.imshow(f.confusion, cmap="Blues")
    dark = max(max(row) for row in f.confusion) / 2
    for i, row in enumerate(f.confusion):
        for j, count in enumerate(row):
            left.text(j, i, str(count), ha="center", va="center", fontsize=8,
                      color="white" if dark and count > dark else "black")
    left.set_xticks(range(len(names)), names, fontsize=7, rotation=20)
    left.set_yticks(range(len(names)), names, fontsize=7)
    left.set_xlabel("judge")
    left.set_ylabel("annotator")
    left.set_title(f"{f.criterion}: answers vs judge ({f.human_vs_judge.n} pairs)", fontsize=9)
    users = list(f.annotators)
    width = 0.38
    for offset, attr, label in ((-width / 2, "with_majority", "with the others' majority"),
                                (width / 2, "with_judge", "with the judge")):
        values = [getattr(f.annotators[u], attr) for u in users]
        bars = right.bar([i + offset for i in range(len(users))],
                         [a.value if a.value is not None else 0 for a in values], width, label=label)
        right.bar_label(bars, labels=[f"{a.value:.2f}\nn={a.n}" if a.value is not None else f"n={a.n}"
                                      for a in values], fontsize=7)
    right.set_xticks(range(len(users)), [f"{u}\n{f.annotators[u].items} items" for u in users], fontsize=7)
    if f.human_vs_judge.value is not None:
        right.axhline(f.human_vs_judge.value, color="black", linewidth=0.8,
                      label=f"all annotators vs judge {f.human_vs_judge.value:.2f}")
    right.axhline(trust.min_kappa, color="grey", linestyle="--", linewidth=0.8, label=f"trust at {trust.min_kappa:g}")
    right.set_ylim(-1.2, 1.3)
    right.set_title(f"Cohen's kappa per annotator ({f.human_vs_judge.metric}); "
                    + ("trusted" if trust.trusts(f.criterion) else "not trusted"), fontsize=9)
    right.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _fmt(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"


def _agreement_section(figures: dict[str, CriterionAgreement], trust: JudgeTrust) -> list[str]:
    md = ["## Agreement", "", markdown_table(
        ["criterion", "human vs judge", "metric", "pairs", "missing", "exact", "between annotators", "metric",
         "records"],
        [[c, _fmt(f.human_vs_judge.value), f.human_vs_judge.metric, f.human_vs_judge.n, f.human_vs_judge.missing,
          _fmt(f.human_vs_judge.exact), _fmt(f.inter_annotator.value), f.inter_annotator.metric, f.inter_annotator.n]
         for c, f in figures.items()]), "",
        "Human vs judge pairs each annotator's answer with the judge's score on the same record (Cohen's kappa: "
        "unweighted on yes/no and the compliance classes, weighted on the 1-5 scales); between annotators counts "
        "records with two or more answers (Krippendorff's alpha). Answers are read case-insensitively; a missing "
        "answer or score drops its pair and is counted under missing.", "", "![review](review.png)", ""]
    scales = {c: f for c, f in figures.items() if f.kappas}
    if scales:
        md += ["### The 1-5 scales under each weighting", "", markdown_table(
            ["criterion", "unweighted", "linear", "quadratic", "pairs"],
            [[c, *[_fmt(f.kappas[w].value) for w in ("unweighted", "linear", "quadratic")], f.human_vs_judge.n]
             for c, f in scales.items()]), ""]
    rows = [[u, c, a.items, _fmt(a.with_majority.value), a.with_majority.n, _fmt(a.with_judge.value), a.with_judge.n,
             _fmt(a.with_judge.exact)]
            for c, f in figures.items() for u, a in f.annotators.items()]
    md += ["### Per annotator", ""]
    md += [markdown_table(["annotator", "criterion", "items", "kappa with the others' majority", "pairs",
                           "kappa with the judge", "pairs", "exact with the judge"], rows), "",
           "With the others' majority: on each record the annotator answered, the answer more than half of the other "
           "annotators gave (records without one are left out).", ""] if rows else ["No answers yet.", ""]
    for c in figures:
        md += [f"![{c}](agreement-{c}.png)", ""]
    return md


def _trust_section(trust: JudgeTrust) -> list[str]:
    trusted = [c for c in trust.criteria if trust.trusts(c)]
    return ["## Where the judge is trusted", "",
            f"A criterion filters records without a person only when the judge's kappa with the annotators reaches "
            f"**{trust.min_kappa:g}**, and only once **{trust.min_reviewed}** records are reviewed (now "
            f"{trust.reviewed}). Trusted: **{', '.join(trusted) or 'none'}**. On the others, curation keeps records "
            "the judge scores below threshold, `review push` queues them, and publish holds them until a person "
            "has decided (`judge_trust.json`).", "",
            markdown_table(["criterion", "kappa", "metric", "pairs", "trusted", "why"],
                           [[c, _fmt(t.kappa), t.metric, t.pairs, "yes" if t.trusted else "no", t.why]
                            for c, t in trust.criteria.items()]), ""]


def write_review_report(folder: Path, merged: MergeResult, summary: dict, details: dict,
                        figures: dict[str, CriterionAgreement], trust: JudgeTrust) -> Path:
    records = [r for rows in merged.splits.values() for r in rows]
    domains = default_taxonomy().domain_ids()
    per_domain = {d: Counter(r.review.status for r in records if r.domain == d) for d in domains}
    _plot_overview(folder / "review.png", domains, per_domain, figures, trust)
    for c, f in figures.items():
        _plot_criterion(folder / f"agreement-{c}.png", f, trust)

    waiting = sum(1 for r in records
                  if r.review.status == "pending" and r.review.annotator_count < details["min_submitted"])
    undecided = summary["statuses"]["pending"] - waiting
    md = ["# Review report", "",
          f"- Queues {', '.join(f'`{q}`' for q in details['queues'])} in workspace `{details['workspace']}`; rule "
          f"**{summary['rule']}**, {details['min_submitted']} submitted response(s) needed per record",
          f"- Annotators: {summary['annotators']} ({', '.join(details['annotators']) or 'none yet'})",
          "- Statuses: " + ", ".join(f"{k} **{v}**" for k, v in summary["statuses"].items())
          + f" (pending: {waiting} awaiting answers, {undecided} answered but undecided)",
          f"- Queue records not in this run: {details['not_in_run']}",
          "- The merged dataset is in `review/dataset` (same splits and features as `curated/`, which is unchanged); "
          "an edited record keeps the old response in `review.original_response`.", ""]
    md += ["## Status per domain", "",
           markdown_table(["domain", *STATUSES], [[d, *[per_domain[d].get(s, 0) for s in STATUSES]] for d in domains]),
           ""]
    md += _agreement_section(figures, trust)
    md += _trust_section(trust)
    md += ["## Disagreements", ""]
    if merged.disagreements:
        rows = [[d["id"], d["domain"], d["question"], ", ".join(f"{u}: {v}" for u, v in d["answers"].items())]
                for d in merged.disagreements]
        md += [markdown_table(["id", "domain", "question", "answers"], rows), "",
               "All of them are in `disagreements.json`.", ""]
    else:
        md += ["None.", ""]
    if details["problems"]:
        md += ["## Records left pending", "",
               markdown_table(["id", "why"], [[p["id"], p["problem"]] for p in details["problems"]]), ""]
    if details["edited_with_unverified_contacts"]:
        md += ["## Edited responses with unverified contact details", "",
               "These human edits contain a phone number, URL or e-mail not in resources.yaml for the record's "
               "locale (`checks.passed` is false): fix them before publishing.", "",
               *[f"- `{i}`" for i in details["edited_with_unverified_contacts"]], ""]
    return write_text_atomic(folder / "report.md", "\n".join(md))
