"""The run report: report/report.md with PNG plots. Says what happened to every record."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from psychosafe.runs import RunFolder  # noqa: E402
from psychosafe.schemas import default_taxonomy  # noqa: E402

MAX_LISTED = 200


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in rows]
    return "\n".join(lines)


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
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_funnel(stages: list[tuple[str, int, int]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(stages) + 1.2))
    names = [s[0] for s in stages][::-1]
    ax.barh(names, [s[1] for s in stages][::-1], color="tab:green", label="kept")
    ax.barh(names, [s[2] for s in stages][::-1], left=[s[1] for s in stages][::-1], color="tab:red", label="set aside")
    ax.set_xlabel("records")
    ax.set_title("What each stage kept and set aside")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(run: RunFolder, splits: dict[str, list[dict]]) -> Path:
    """`splits`: split name -> rows of the curated dataset."""
    manifest = run.manifest()
    run.report.mkdir(parents=True, exist_ok=True)
    domains = [d for d in default_taxonomy().domain_ids()]
    split_counts = {name: Counter(r["domain"] for r in rows) for name, rows in splits.items()}
    stages = manifest.get("stages", {})
    funnel = [(name, s["counts"].get("kept", 0), s["counts"].get("rejected", 0)) for name, s in stages.items()
              if "kept" in s.get("counts", {})]
    _plot_splits(split_counts, domains, run.report / "domains.png")
    if funnel:
        _plot_funnel(funnel, run.report / "stages.png")
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
    md += ["## Stages", "", _table(["stage", "in", "kept", "set aside", "seconds", "notes"], [
        [name, s["counts"].get("in", ""), s["counts"].get("kept", ""), s["counts"].get("rejected", ""), s["seconds"],
         ", ".join(f"{k}: {v}" for k, v in s["counts"].items()
                   if k not in ("in", "kept", "rejected", "kept_per_domain") and v not in ({}, None, 0))]
        for name, s in stages.items()]), ""]
    if funnel:
        md += ["![stages](stages.png)", ""]
    md += ["## Curated records per domain", "", _table(
        ["domain", *splits, "harmful", "benign"],
        [[d, *[split_counts[s].get(d, 0) for s in splits], label_counts[d]["harmful"], label_counts[d]["benign"]]
         for d in domains]), "", "![domains](domains.png)", ""]
    md += ["## Set aside", ""]
    if rejected:
        by_reason = Counter((r.stage, r.reason.split(":")[0]) for r in rejected)
        md += [_table(["stage", "reason", "records"], [[s, reason, n] for (s, reason), n in by_reason.most_common()]), ""]
        md += [f"Each record set aside (first {MAX_LISTED}; all are in `rejected/<stage>.jsonl`):", ""]
        md += [_table(["stage", "id", "domain", "reason"],
                      [[r.stage, r.id or "", r.domain or "", r.reason[:160]] for r in rejected[:MAX_LISTED]]), ""]
    else:
        md += ["Nothing was set aside.", ""]
    path = run.report / "report.md"
    path.write_text("\n".join(md), encoding="utf-8")
    return path
