"""The run report: report/report.md with PNG plots. Says what happened to every record."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from psychosafe.core.io import markdown_table, read_jsonl  # noqa: E402
from psychosafe.core.runs import RunFolder  # noqa: E402
from psychosafe.schemas import Record, default_rubric, default_taxonomy  # noqa: E402

from .steps import FLAGGED_DIR, CurationAnalysis  # noqa: E402

MAX_LISTED = 200
_NOT_NOTES = ("in", "kept", "rejected", "kept_per_domain", "kept_per_category", "reasons", "unverified_contacts",
              "verified_resources", "collapse_per_domain", "moved_ids")


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_splits(split_counts: dict[str, Counter], domains: list[str], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 4))
    bottom = [0] * len(domains)
    for split, counts in split_counts.items():
        values = [counts.get(d, 0) for d in domains]
        ax.bar(domains, values, bottom=bottom, label=split)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_ylabel("records")
    ax.set_title("Curated records per domain and split")
    ax.legend()
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    _save(fig, path)


def _plot_funnel(stages: list[tuple[str, int, int]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(stages) + 1.2))
    names = [s[0] for s in stages][::-1]
    ax.barh(names, [s[1] for s in stages][::-1], color="tab:green", label="kept")
    ax.barh(names, [s[2] for s in stages][::-1], left=[s[1] for s in stages][::-1], color="tab:red", label="set aside")
    ax.set_xlabel("records")
    ax.set_title("What each stage kept and set aside")
    ax.legend(loc="lower right")
    _save(fig, path)


def _plot_domains_by_step(steps: dict[str, dict], domains: list[str], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 4.5))
    names = list(steps)
    for d in domains:
        ax.plot(names, [steps[s].get(d, 0) for s in names], marker="o", label=d)
    ax.set_ylabel("records kept")
    ax.set_title("Records per domain after each step")
    ax.legend(fontsize=8)
    plt.setp(ax.get_xticklabels(), rotation=25, ha="right")
    _save(fig, path)


def _plot_categories_by_step(steps: dict[str, dict], path: Path) -> None:
    cells = sorted({c for counts in steps.values() for c in counts})
    grid = np.array([[steps[s].get(c, 0) for s in steps] for c in cells])
    fig, ax = plt.subplots(figsize=(1.2 * len(steps) + 4, 0.28 * len(cells) + 1.8))
    ax.imshow(grid, aspect="auto", cmap="Greens")
    ax.set_xticks(range(len(steps)), list(steps), rotation=25, ha="right")
    ax.set_yticks(range(len(cells)), cells, fontsize=7)
    for (y, x), v in np.ndenumerate(grid):
        ax.text(x, y, str(v), ha="center", va="center", fontsize=6)
    ax.set_title("Records per domain/category after each step")
    _save(fig, path)


def _plot_similarity(analysis: CurationAnalysis, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, values, threshold, what in ((axes[0], analysis.prompt_nearest, analysis.dedup_threshold, "prompts"),
                                        (axes[1], analysis.response_nearest, analysis.collapse_threshold, "responses")):
        if len(values):
            ax.hist(values, bins=50, range=(min(0.0, float(values.min())), 1.0), color="tab:blue")
        else:
            ax.text(0.5, 0.5, f"no {what} to compare", ha="center", va="center", transform=ax.transAxes)
        if threshold is not None:
            ax.axvline(threshold, color="tab:red", linestyle="--", label=f"threshold {threshold}")
            ax.legend()
        ax.set_xlabel("cosine similarity to the nearest other one")
        ax.set_ylabel(what)
        ax.set_title(f"Nearest-neighbour similarity of {what}")
    _save(fig, path)


def _plot_scores(rows: list[dict], path: Path) -> bool:
    criteria = default_rubric().criteria
    present = [c for c in criteria if any(r["scores"].get(c.id) is not None for r in rows)]
    if not present:
        return False
    fig, axes = plt.subplots(1, len(present), figsize=(3.2 * len(present), 3.2), squeeze=False)
    for ax, c in zip(axes[0], present):
        values = [r["scores"][c.id] for r in rows if r["scores"].get(c.id) is not None]
        if c.kind == "binary":
            counts = Counter(bool(v) for v in values)
            ax.bar(["no", "yes"], [counts[False], counts[True]], color="tab:purple")
        else:
            ax.hist(values, bins=np.arange(c.min, c.max + 2) - 0.5, color="tab:purple", rwidth=0.8)
        ax.set_title(c.name)
    fig.suptitle("Judge scores of curated records")
    _save(fig, path)
    return True


def _plot_collapse(collapse: dict, path: Path) -> None:
    per_domain = collapse.get("collapse_per_domain", {})
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.bar(list(per_domain), [100 * v for v in per_domain.values()], color="tab:orange")
    ax.set_ylabel("% of responses in a template")
    ax.set_ylim(0, 100)
    ax.set_title(f"Template collapse: {100 * collapse.get('collapse_rate', 0):.1f}% of responses overall "
                 f"({collapse.get('templates', 0)} template(s), action: {collapse.get('action')})")
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    _save(fig, path)


def _plot_unverified(unverified: Counter, path: Path) -> None:
    top = unverified.most_common(15)[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(top) + 1.5))
    ax.barh([c for c, _ in top], [n for _, n in top], color="tab:red")
    ax.set_xlabel("records")
    ax.set_title("Unverified contact details (not in resources.yaml for the record's locale)")
    _save(fig, path)


def write_report(run: RunFolder, splits: dict[str, list], analysis: CurationAnalysis | None = None) -> Path:
    """`splits`: split name -> curated records (Record or dataset rows)."""
    analysis = analysis or CurationAnalysis()
    splits = {name: [r.model_dump() if isinstance(r, Record) else r for r in rows] for name, rows in splits.items()}
    manifest = run.manifest()
    run.report.mkdir(parents=True, exist_ok=True)
    domains = default_taxonomy().domain_ids()
    split_counts = {name: Counter(r["domain"] for r in rows) for name, rows in splits.items()}
    stages = manifest.get("stages", {})
    funnel = [(name, s["counts"].get("kept", 0), s["counts"].get("rejected", 0)) for name, s in stages.items()
              if "kept" in s.get("counts", {})]
    _plot_splits(split_counts, domains, run.report / "domains.png")
    if funnel:
        _plot_funnel(funnel, run.report / "stages.png")
    by_domain = {n: s["counts"]["kept_per_domain"] for n, s in stages.items()
                 if "kept_per_domain" in s.get("counts", {})}
    by_category = {n: s["counts"]["kept_per_category"] for n, s in stages.items()
                   if "kept_per_category" in s.get("counts", {})}
    by_domain["curated"] = {d: sum(c.get(d, 0) for c in split_counts.values()) for d in domains}
    by_category["curated"] = dict(Counter(f"{r['domain']}/{r['category'] or '-'}"
                                          for rows in splits.values() for r in rows))
    rejected = run.read_rejected()
    total = sum(len(rows) for rows in splits.values())
    label_counts = defaultdict(Counter)
    for rows in splits.values():
        for r in rows:
            label_counts[r["domain"]][r["label"]] += 1

    md = [f"# Run report: {manifest.get('run_id', run.path.name)}", ""]
    md += [f"- Curated records: **{total}** ({', '.join(f'{k} {len(v)}' for k, v in splits.items())})",
           f"- Set aside: **{len(rejected)}** (every one is in `rejected/`, with its stage and reason)",
           f"- Models: {', '.join(f'{k} `{v}`' for k, v in manifest.get('models', {}).items())}",
           f"- Seed: {manifest.get('seed')}", ""]
    if "curation_input" in manifest:
        given = manifest["curation_input"]
        md[-1:-1] = [f"- Input: `{given['path']}` ({given['records']} records)"]
    md += ["## Stages", "", markdown_table(["stage", "in", "kept", "set aside", "seconds", "notes"], [
        [name, s["counts"].get("in", ""), s["counts"].get("kept", ""), s["counts"].get("rejected", ""), s["seconds"],
         ", ".join(f"{k}: {v}" for k, v in s["counts"].items() if k not in _NOT_NOTES and v not in ({}, None, 0, []))]
        for name, s in stages.items()]), ""]
    if funnel:
        md += ["![stages](stages.png)", ""]
    if by_domain:
        _plot_domains_by_step(by_domain, domains, run.report / "steps_domains.png")
        md += ["## Records per domain and category after each step", "",
               markdown_table(["step", *domains],
                              [[s, *[c.get(d, 0) for d in domains]] for s, c in by_domain.items()]), "",
               "![domains by step](steps_domains.png)", ""]
    if by_category:
        _plot_categories_by_step(by_category, run.report / "steps_categories.png")
        md += ["![categories by step](steps_categories.png)", ""]
    md += ["## Curated records per domain", "", markdown_table(
        ["domain", *splits, "harmful", "benign"],
        [[d, *[split_counts[s].get(d, 0) for s in splits], label_counts[d]["harmful"], label_counts[d]["benign"]]
         for d in domains]), "", "![domains](domains.png)", ""]
    md += _similarity_section(run, analysis, stages)
    md += _collapse_section(run, analysis)
    md += _contacts_section(run, analysis, rejected)
    if _plot_scores([r for rows in splits.values() for r in rows], run.report / "scores.png"):
        md += ["## Judge scores", "", "![scores](scores.png)", ""]
    leakage = stages.get("split", {}).get("counts", {}).get("leakage")
    if leakage:
        md += ["## Leakage across splits", "",
               f"Prompts with cosine >= {leakage['threshold']} in different splits: {leakage['pairs_across_splits']} "
               f"pair(s); {leakage['moved_to_train']} held-out record(s) moved into train; "
               f"{leakage['remaining']} pair(s) remain.", ""]
    md += ["## Set aside", ""]
    if rejected:
        by_reason = Counter((r.stage, r.code) for r in rejected)
        md += [markdown_table(["stage", "reason", "records"],
                              [[s, reason, n] for (s, reason), n in by_reason.most_common()]), ""]
        md += [f"Each record set aside (first {MAX_LISTED}; all are in `rejected/<stage>.jsonl`):", ""]
        md += [markdown_table(["stage", "id", "domain", "reason"],
                      [[r.stage, r.id or "", r.domain or "", r.reason[:160]] for r in rejected[:MAX_LISTED]]), ""]
    else:
        md += ["Nothing was set aside.", ""]
    path = run.report / "report.md"
    path.write_text("\n".join(md), encoding="utf-8")
    return path


def _similarity_section(run: RunFolder, analysis: CurationAnalysis, stages: dict) -> list[str]:
    if not len(analysis.prompt_nearest):
        return []
    _plot_similarity(analysis, run.report / "similarity.png")
    sem = stages.get("prompt_dedup_semantic", {}).get("counts", {})
    above = int(np.sum(analysis.prompt_nearest >= analysis.dedup_threshold)) if analysis.dedup_threshold else 0
    merged = ", ".join(f"{n} by {by}" for by, n in sem.get("merged_by", {}).items())
    md = ["## Similarity", "",
          f"{above} of {len(analysis.prompt_nearest)} prompts have a neighbour at cosine >= "
          f"{analysis.dedup_threshold}"
          f" (search: {sem.get('method', 'n/a')}); semantic dedup set aside {sem.get('rejected', 0)}"
          + (f" ({merged})" if merged else "") + ".", "",
          "![similarity](similarity.png)", ""]
    return md + _flagged_pairs(run)


def _flagged_pairs(run: RunFolder, shown: int = 30) -> list[str]:
    """The pairs semantic dedup kept but flagged (flagged/<step>.jsonl): a person decides whether they are one
    request."""
    rows = [row for path in sorted((run.path / FLAGGED_DIR).glob("*.jsonl")) for row in read_jsonl(path)
            if row.get("code", "").startswith("near_duplicate")]
    if not rows:
        return []
    codes = Counter(row["code"] for row in rows)
    rows.sort(key=lambda row: -row["similarity"])
    return ["### Pairs flagged for review", "",
            f"Pairs kept but flagged: **{len(rows)}** ({', '.join(f'{c} {n}' for c, n in codes.items())}). In the "
            f"review band no judge decided them; above the threshold their domain or intent differs. Each is a row "
            f"of `flagged/` (record `ids`, `similarity`, `why`).", "",
            markdown_table(["cosine", "prompt a", "prompt b", "code"],
                           [[f"{row['similarity']:.3f}", *row["prompts"], row["code"]] for row in rows[:shown]]), ""]


def _collapse_section(run: RunFolder, analysis: CurationAnalysis) -> list[str]:
    c = analysis.collapse
    if not c:
        return []
    _plot_collapse(c, run.report / "template_collapse.png")
    return ["## Template collapse", "",
            f"Collapse rate: **{100 * c['collapse_rate']:.1f}%** of responses sit in {c['templates']} template(s) "
            f"(responses at cosine >= {c['threshold']} shared by several prompts; largest: {c['largest_template']} "
            f"prompts). Action: {c['action']}.", "", "![template collapse](template_collapse.png)", ""]


def _contacts_section(run: RunFolder, analysis: CurationAnalysis, rejected: list) -> list[str]:
    checked = [r for r in analysis.checked if r.checks.is_refusal is not None]
    if not checked:
        return []
    unverified = Counter(c for r in checked for c in r.checks.unverified_contacts)
    blocked = sum(1 for r in checked if r.checks.unverified_contacts)
    verified = Counter(v for r in checked for v in r.checks.verified_resources)
    md = ["## Contact details", "",
          f"{blocked} of {len(checked)} checked responses give a contact detail that is not in resources.yaml for "
          f"their locale; each is set aside. Verified resources cited: "
          f"{', '.join(f'{k} ({n})' for k, n in verified.most_common()) or 'none'}.", ""]
    if unverified:
        _plot_unverified(unverified, run.report / "unverified_contacts.png")
        md += [markdown_table(["unverified contact", "records"], [[c, n] for c, n in unverified.most_common(30)]), "",
               "![unverified contacts](unverified_contacts.png)", ""]
    return md
