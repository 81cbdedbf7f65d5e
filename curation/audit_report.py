"""The audit's report: audit/report.md with PNG plots, from the summary and the flagged records."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from psychosafe.core.io import markdown_table, write_text_atomic  # noqa: E402
from psychosafe.schemas import Record  # noqa: E402

from .report import _plot_collapse, _plot_similarity, _save  # noqa: E402
from .steps import CurationAnalysis  # noqa: E402

MAX_LISTED = 200
MAX_CONTACT_ROWS = 40


def _bar(labels: list[str], values: list[float], title: str, xlabel: str, path: Path, colour: str) -> None:
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(labels) + 1.5))
    ax.barh(labels[::-1], values[::-1], color=colour)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    _save(fig, path)


def write_audit_report(folder: Path, summary: dict, records: list[Record], analysis: CurationAnalysis) -> Path:
    """report.md: what the corpus is made of and every flag, with the figures of summary.json."""
    folder.mkdir(parents=True, exist_ok=True)
    given = summary["input"]
    md = ["# Corpus audit", "",
          f"- Input: `{given['path']}`: **{summary['records']}** records"
          + (f", {given['out_of_scope']} row(s) out of scope (not imported)" if given["out_of_scope"] else ""),
          f"- Records without a locale: **{given['without_locale']}** (read as {given['default_locale']}: every "
          "contact check depends on it; name the corpus's locale with --locale)",
          f"- Flagged: **{summary['flagged_records']}** of {summary['records']} records (nothing was dropped; "
          "`records/` holds every record with its flags)",
          f"- Sources: {', '.join(f'{k} ({n})' for k, n in summary['sources'].items())}",
          f"- Licenses: {', '.join(f'{k} ({n})' for k, n in summary['licenses'].items())}", ""]

    flags = summary["flags"]
    md += ["## Flags", ""]
    if flags:
        _bar(list(flags), list(flags.values()), "Records per flag", "records", folder / "flags.png", "tab:red")
        md += [markdown_table(["flag", "records"], [[k, n] for k, n in flags.items()]), "", "![flags](flags.png)", ""]
    else:
        md += ["No record was flagged.", ""]

    div, t = summary["diversity"], summary["templates"]
    md += ["## Templates and diversity", "",
           f"- Templates: **{t['templates'] or 0}** holding {t['records_in_templates'] or 0} responses (collapse rate "
           f"{100 * (t['collapse_rate'] or 0):.1f}%); the largest answers **{div['largest_template']}** prompts, "
           f"{100 * div['largest_template_share']:.1f}% of the responses",
           f"- Distinct-1 {div['distinct_1']}, distinct-2 {div['distinct_2']} (distinct word unigrams / bigrams over "
           "all of them in the responses)", "",
           markdown_table(["domain", "records", "distinct responses"],
                          [[d, v["records"], v["distinct_responses"]]
                           for d, v in div["distinct_responses_per_domain"].items()]), ""]
    if analysis.collapse:
        _plot_collapse(analysis.collapse, folder / "template_collapse.png")
        md += ["![template collapse](template_collapse.png)", ""]
    if len(analysis.prompt_nearest):
        _plot_similarity(analysis, folder / "similarity.png")
        md += [f"Duplicates: {summary['duplicates']['exact']} exact, {summary['duplicates']['near']} near "
               f"(cosine >= {analysis.dedup_threshold}).", "", "![similarity](similarity.png)", ""]

    contacts = summary["contacts"]
    md += ["## Contact details", ""]
    if contacts["table"]:
        outcomes = contacts["outcomes"]
        _bar(list(outcomes), list(outcomes.values()), "Contact details by outcome", "mentions",
             folder / "contacts.png", "tab:blue")
        md += ["verified: listed for the record's locale; other_locale: a real service of another country (flagged, "
               "not blocked); malformed: a listed service written wrongly (blocked; the listed form is named); "
               "unknown: in no directory entry (blocked).", "",
               markdown_table(["contact", "outcome", "records"], contacts["table"][:MAX_CONTACT_ROWS]), "",
               "![contacts](contacts.png)", ""]
    else:
        md += ["No response gives a contact detail.", ""]

    md += ["## Evaluation contamination", ""]
    overlap = summary["contamination"]
    if overlap:
        md += [markdown_table(["eval set", "exact", "semantic", "records"],
                              [[k, v["exact"], v["semantic"], v["records"]] for k, v in overlap.items()]), ""]
    else:
        md += ["No prompt was found in an evaluation set.", ""]

    if summary["label_audit"] is not None:
        md += ["## Label audit", "", markdown_table(["suspicion", "records"],
                                                    [[k, n] for k, n in summary["label_audit"].items()]), ""]

    listed = [r for r in records if r.flags][:MAX_LISTED]
    if listed:
        md += [f"## Flagged records (first {len(listed)}; all are in `records/`)", "",
               markdown_table(["id", "domain", "flags", "first finding"],
                              [[r.id, r.domain, ", ".join(f.code for f in r.flags), r.flags[0].found[:140]]
                               for r in listed]), ""]
    path = folder / "report.md"
    write_text_atomic(path, "\n".join(md))
    return path
