"""Compare two judged eval folders (v0 vs v1, base vs fine-tuned) on the same prompts, in the shape of the
paper's table: per-criterion rates and means, overall refusal quality, relative improvement
((B - A) / A), per domain, with paired bootstrap 95 % intervals and a paired permutation test."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from psychosafe.core.io import markdown_table, write_json_atomic
from psychosafe.errors import InputError
from psychosafe.schemas import default_rubric

from .metrics import overall_quality, paired_comparison, unit_scores
from .records import COMPLIANCE_BENCHMARKS, EvalRecord
from .report import bar_chart, eval_summary, fmt, fmt_ci, fmt_p, latest_records
from .tasks import first_per_group


def _judged(folder: Path) -> list[EvalRecord]:
    records, checked = latest_records(folder)
    if not checked:
        raise InputError(folder, "not judged yet; run `psychosafe eval judge` on it first")
    return records


def _criteria_block(pairs: list[tuple[EvalRecord, EvalRecord]], resamples: int, seed: int) -> dict:
    rubric = default_rubric()
    out = {}
    for c in rubric.criteria:
        a = [c.scale_to_unit(getattr(x.scores, c.id)) for x, _ in pairs]
        b = [c.scale_to_unit(getattr(y.scores, c.id)) for _, y in pairs]
        entry = paired_comparison(a, b, resamples=resamples, seed=seed)
        if c.kind == "scale":  # the paper reports scales on their own range as well
            entry["base_raw"] = (sum(getattr(x.scores, c.id) for x, _ in pairs) / len(pairs)) if pairs else None
            entry["new_raw"] = (sum(getattr(y.scores, c.id) for _, y in pairs) / len(pairs)) if pairs else None
        out[c.id] = entry
    out["overall_quality"] = paired_comparison([overall_quality(x.scores) for x, _ in pairs],
                                               [overall_quality(y.scores) for _, y in pairs],
                                               resamples=resamples, seed=seed)
    return out


def compare_runs(a: str | Path, b: str | Path, out: str | Path, *, resamples: int = 2000, seed: int = 0,
                 limit: int | None = None) -> dict:
    """summary.json + report.md + charts in `out`; returns the summary. A is the baseline, B the new model.
    `limit` keeps A's first N prompts per group (and their pairs in B)."""
    a, b, out = Path(a), Path(b), Path(out)
    ra, rb = {r.id: r for r in first_per_group(_judged(a), limit)}, {r.id: r for r in _judged(b)}
    common = [i for i in ra if i in rb]
    if not common:
        raise InputError(b, f"no prompt in common with {a}; compare two evals of the same prompt set")
    harmful = [(ra[i], rb[i]) for i in common
               if ra[i].label == "harmful" and ra[i].benchmark not in COMPLIANCE_BENCHMARKS
               and unit_scores(ra[i].scores) is not None and unit_scores(rb[i].scores) is not None]
    summary: dict = {
        "a": str(a), "b": str(b), "label_a": a.name, "label_b": b.name,
        "counts": {"a": len(ra), "b": len(rb), "common": len(common), "only_in_a": len(ra) - len(common),
                   "only_in_b": len(rb) - len(common), "harmful_scored_in_both": len(harmful)},
        "criteria": _criteria_block(harmful, resamples, seed),
    }
    groups = defaultdict(list)
    for x, y in harmful:
        groups[x.domain or x.group].append((x, y))
    summary["per_group"] = {g: _criteria_block(p, resamples, seed) for g, p in sorted(groups.items())}
    benign = [(ra[i], rb[i]) for i in common if ra[i].label == "benign" and ra[i].scores.compliance
              and rb[i].scores.compliance]
    summary["benign_full_compliance"] = paired_comparison(
        [float(x.scores.compliance == "full_compliance") for x, _ in benign],
        [float(y.scores.compliance == "full_compliance") for _, y in benign], resamples=resamples, seed=seed)
    summary["checks"] = {
        name: paired_comparison([float(test(x)) for x, _ in pairs], [float(test(y)) for _, y in pairs],
                                resamples=resamples, seed=seed)
        for name, test, pairs in (
            ("verified_resource_harmful", lambda r: bool(r.checks.verified_resources),
             [(ra[i], rb[i]) for i in common if ra[i].label == "harmful"]),
            ("unverified_contact", lambda r: bool(r.checks.unverified_contacts), [(ra[i], rb[i]) for i in common]),
            ("refusal_marker_harmful", lambda r: bool(r.checks.is_refusal),
             [(ra[i], rb[i]) for i in common if ra[i].label == "harmful"]),
            ("refusal_marker_benign", lambda r: bool(r.checks.is_refusal),
             [(ra[i], rb[i]) for i in common if ra[i].label == "benign"]))}
    sa, sb = eval_summary(a), eval_summary(b)
    for key in ("xstest", "sorry_bench", "capability"):
        if key in sa and key in sb:
            summary[key] = {"a": sa[key], "b": sb[key]}
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "summary.json", summary)
    _write_report(summary, out)
    return summary


def _row(name: str, e: dict, pct: bool) -> list[str]:
    return [name, fmt(e["base"], pct), fmt(e["new"], pct), fmt(e["difference"], pct), fmt(e["relative"], True),
            fmt_ci(e["relative_ci"], True), fmt_p(e["p_value"])]


def _write_report(s: dict, out: Path) -> None:
    rubric = default_rubric()
    la, lb = s["label_a"], s["label_b"]
    header = ["criterion", la, lb, "difference", "relative", "95 % interval (relative)", "p (paired)"]
    crit = s["criteria"]
    rows = [_row(f"{c.name} ({'rate' if c.kind == 'binary' else f'{c.min}-{c.max} scaled 0-1'})", crit[c.id],
                 c.kind == "binary") for c in rubric.criteria]
    rows.append(_row("Overall refusal quality (0-1)", crit["overall_quality"], False))
    c = s["counts"]
    md = [f"# Comparison: {la} (A, baseline) vs {lb} (B)", "",
          f"- A: `{s['a']}`", f"- B: `{s['b']}`",
          f"- Prompts: {c['common']} in both ({c['only_in_a']} only in A, {c['only_in_b']} only in B); "
          f"{c['harmful_scored_in_both']} harmful prompts judged in both are paired below.",
          "- Relative = (B - A) / A, as the paper reports (+28.1 % overall, +46.8 % references, +34.8 % grounding). "
          "Intervals: paired bootstrap over prompts; p: paired sign-flip permutation test.", "",
          "## Rubric (harmful prompts)", "", markdown_table(header, rows), "", "![criteria](criteria.png)", ""]
    names = [x.name for x in rubric.criteria] + ["Overall"]
    keys = [x.id for x in rubric.criteria] + ["overall_quality"]
    bar_chart(out / "criteria.png", names, {la: [crit[k]["base"] for k in keys], lb: [crit[k]["new"] for k in keys]},
              intervals={la: [crit[k]["base_ci"] for k in keys], lb: [crit[k]["new_ci"] for k in keys]},
              title="Rubric on harmful prompts (0-1, 95 % bootstrap interval)", ylabel="score (0-1)")
    if s["per_group"]:
        md += ["## Per domain", "", markdown_table(["domain", "n", f"{la} overall", f"{lb} overall", "relative",
                                            "95 % interval", "p"], [
            [g, e["overall_quality"]["n"], fmt(e["overall_quality"]["base"]), fmt(e["overall_quality"]["new"]),
             fmt(e["overall_quality"]["relative"], True), fmt_ci(e["overall_quality"]["relative_ci"], True),
             fmt_p(e["overall_quality"]["p_value"])] for g, e in s["per_group"].items()]), "",
               "![domains](domains.png)", ""]
        groups = list(s["per_group"])
        bar_chart(out / "domains.png", groups,
                  {la: [s["per_group"][g]["overall_quality"]["base"] for g in groups],
                   lb: [s["per_group"][g]["overall_quality"]["new"] for g in groups]},
                  intervals={la: [s["per_group"][g]["overall_quality"]["base_ci"] for g in groups],
                             lb: [s["per_group"][g]["overall_quality"]["new_ci"] for g in groups]},
                  title="Overall refusal quality per domain", ylabel="overall quality (0-1)")
    b = s["benign_full_compliance"]
    md += ["## Benign prompts and rule-based checks", "", markdown_table(header[:1] + header[1:], [
        _row(f"benign: full compliance (n = {b['n']})", b, True),
        *[_row(f"{name.replace('_', ' ')} (n = {e['n']})", e, True) for name, e in s["checks"].items()]]), ""]
    if "xstest" in s:
        rows = []
        for by in ("string_match", "judge"):
            xa, xb = s["xstest"]["a"].get(by), s["xstest"]["b"].get(by)
            if xa and xb:
                rows += [[f"safe: refusal rate ({by})", fmt(xa["safe"]["refusal_rate"], True),
                          fmt(xb["safe"]["refusal_rate"], True)],
                         [f"unsafe: full compliance ({by})", fmt(xa["unsafe"]["compliance_rate"], True),
                          fmt(xb["unsafe"]["compliance_rate"], True)]]
        md += ["## XSTest", "", markdown_table(["figure", la, lb], rows), ""]
    if "sorry_bench" in s:
        md += ["## SORRY-Bench", "", markdown_table(["fulfillment rate", la, lb], [
            [by, fmt(s["sorry_bench"]["a"][by]["fulfillment_rate"], True),
             fmt(s["sorry_bench"]["b"][by]["fulfillment_rate"], True)]
            for by in ("string_match", "judge") if by in s["sorry_bench"]["a"] and by in s["sorry_bench"]["b"]]), ""]
    if "capability" in s:
        ca, cb = s["capability"]["a"], s["capability"]["b"]
        md += ["## Capability (lm-evaluation-harness)", "", markdown_table(["task", "metric", la, lb], [
            [t, m, fmt(v), fmt(cb.get(t, {}).get(m))] for t, ms in ca.items() for m, v in ms.items()]), ""]
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")
