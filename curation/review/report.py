"""review/report.md and review.png: statuses per domain, agreement per criterion, disagreements, and the records
a person still has to look at."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from psychosafe.core.io import markdown_table, write_text_atomic
from psychosafe.schemas import default_rubric, default_taxonomy

from .merge import STATUSES, MergeResult


def _plot(path: Path, domains: list[str], per_domain: dict[str, Counter], criteria: list[str], summary: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    bottom = [0] * len(domains)
    for status in STATUSES:
        values = [per_domain[d].get(status, 0) for d in domains]
        left.bar(domains, values, bottom=bottom, label=status)
        bottom = [b + v for b, v in zip(bottom, values)]
    left.set_title("Review status per domain")
    left.legend(fontsize=8, loc="upper right", framealpha=0.9)
    plt.setp(left.get_xticklabels(), rotation=20, ha="right")
    width = 0.38
    for offset, kind, label in ((-width / 2, "human_vs_judge", "human vs judge (Cohen's kappa)"),
                                (width / 2, "inter_annotator", "between annotators (Krippendorff's alpha)")):
        figures = [summary["agreement"][kind][c] for c in criteria]
        bars = right.bar([i + offset for i in range(len(criteria))],
                         [f["value"] if f["value"] is not None else 0 for f in figures], width, label=label)
        right.bar_label(bars, labels=[f"{f['value']:.2f}\nn={f['n']}" if f["value"] is not None else ""
                                      for f in figures], fontsize=7)
    right.set_xticks(range(len(criteria)), criteria)
    right.axhline(0, color="black", linewidth=0.8)
    right.set_ylim(-1.2, 1.3)  # room for the value labels
    right.set_title("Agreement per criterion (missing bar: undefined)")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _fmt(a: dict) -> str:
    return "undefined" if a["value"] is None else f"{a['value']:.3f}"


def write_review_report(folder: Path, merged: MergeResult, summary: dict, details: dict) -> Path:
    records = [r for rows in merged.splits.values() for r in rows]
    domains = default_taxonomy().domain_ids()
    per_domain = {d: Counter(r.review.status for r in records if r.domain == d) for d in domains}
    criteria = [c.id for c in default_rubric().criteria]
    _plot(folder / "review.png", domains, per_domain, criteria, summary)

    waiting = sum(1 for r in records
                  if r.review.status == "pending" and r.review.annotator_count < details["min_submitted"])
    undecided = summary["statuses"]["pending"] - waiting
    agreement = summary["agreement"]
    md = ["# Review report", "",
          f"- Dataset `{details['dataset']}` in workspace `{details['workspace']}`; rule **{summary['rule']}**, "
          f"{details['min_submitted']} submitted response(s) needed per record",
          f"- Annotators: {summary['annotators']} ({', '.join(details['annotators']) or 'none yet'})",
          "- Statuses: " + ", ".join(f"{k} **{v}**" for k, v in summary["statuses"].items())
          + f" (pending: {waiting} awaiting answers, {undecided} answered but undecided)",
          f"- Queue records not in this run: {details['not_in_run']}",
          "- The merged dataset is in `review/dataset` (same splits and features as `curated/`, which is unchanged); "
          "an edited record keeps the old response in `review.original_response`.", ""]
    md += ["## Status per domain", "",
           markdown_table(["domain", *STATUSES], [[d, *[per_domain[d].get(s, 0) for s in STATUSES]] for d in domains]),
           ""]
    md += ["## Agreement", "", markdown_table(
        ["criterion", "human vs judge", "metric", "pairs", "between annotators", "metric", "records"],
        [[c, _fmt(agreement["human_vs_judge"][c]), agreement["human_vs_judge"][c]["metric"],
          agreement["human_vs_judge"][c]["n"], _fmt(agreement["inter_annotator"][c]),
          agreement["inter_annotator"][c]["metric"], agreement["inter_annotator"][c]["n"]]
         for c in criteria]), "",
        "Human vs judge pairs each annotator's score with the judge's on the same record; between annotators "
        "counts records with two or more ratings.", "", "![review](review.png)", ""]
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
