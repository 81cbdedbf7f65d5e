"""Compare two judged eval folders (v0 vs v1, base vs fine-tuned) on the same prompts, in the shape of the
paper's table, per criterion and per domain.

The headline is the relative change (B - A) / A on the scale the paper reports: a yes/no criterion's yes-rate, a
graded criterion's raw 1-5 mean (as the paper's evaluation code computes its changes). Beside it, labelled, the same
change on 0-1 (a rating r as (r - 1) / 4), which for a graded criterion is (m_B - m_A) / (m_A - 1): larger than the
paper's figure. Overall refusal quality is the rubric's one definition (Rubric.overall_quality_definition), on 0-1.

A verdict missing on a criterion follows the `missing` policy, and the report says which and how many were
dropped: `paired` counts a prompt only when every criterion is scored in both folders; `per_criterion` takes each
folder's mean over the prompts it scored on that criterion (unpaired, as the paper's code). Intervals: bootstrap
95 % (paired prompts resampled together); p: permutation tests (sign-flip when paired, two-sample when not).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Callable

from psychosafe.core.io import markdown_table, write_json_atomic
from psychosafe.errors import InputError
from psychosafe.schemas import default_rubric

from .config import MissingPolicy
from .conversations import pattern_of, pattern_order, turn_passes
from .metrics import overall_quality, paired_comparison, unit_scores, unpaired_comparison
from .records import COMPLIANCE_BENCHMARKS, EvalRecord
from .report import bar_chart, eval_summary, fmt, fmt_ci, fmt_p, judged_records
from .tasks import first_per_group

Pairs = list[tuple[EvalRecord, EvalRecord]]
MISSING_POLICIES = {
    "paired": "a prompt counts only when every criterion is scored in both A and B",
    "per_criterion": "each folder's mean over the prompts it scored on that criterion, unpaired (the paper's code)",
}
RELATIVE_DEFINITION = ("(B - A) / A on the paper's scale: the yes-rate of a yes/no criterion, the raw mean of a graded "
                       "one; `unit` holds the same on 0-1 (a rating r as (r - min) / (max - min))")


def _values(pairs: Pairs, policy: MissingPolicy, get: Callable[[EvalRecord], float | None]):
    """(A's values, B's values, dropped) of one figure under the policy."""
    if policy == "paired":
        kept = [(x, y) for x, y in pairs if unit_scores(x.scores) is not None and unit_scores(y.scores) is not None]
        return [get(x) for x, _ in kept], [get(y) for _, y in kept], {"pairs": len(pairs) - len(kept)}
    a = [v for x, _ in pairs if (v := get(x)) is not None]
    b = [v for _, y in pairs if (v := get(y)) is not None]
    return a, b, {"a": len(pairs) - len(a), "b": len(pairs) - len(b)}


def _criteria_block(pairs: Pairs, policy: MissingPolicy, resamples: int, seed: int) -> dict:
    """Per criterion: the comparison on the paper's scale (the headline), `unit` on 0-1 beside it, and what the
    missing-value policy dropped; then overall refusal quality (0-1)."""
    compare = paired_comparison if policy == "paired" else unpaired_comparison

    def stats(get) -> tuple[dict, dict]:
        a, b, dropped = _values(pairs, policy, get)
        return compare(a, b, resamples=resamples, seed=seed), dropped

    out = {}
    for c in default_rubric().criteria:
        def raw(r: EvalRecord, c=c) -> float | None:
            value = getattr(r.scores, c.id)
            return None if value is None else float(value)

        def unit(r: EvalRecord, c=c) -> float | None:
            value = getattr(r.scores, c.id)
            return None if value is None else c.scale_to_unit(value)

        entry, dropped = stats(raw)
        entry |= {"kind": c.kind, "scale": "rate" if c.kind == "binary" else f"mean {c.min}-{c.max}",
                  "dropped": dropped, "unit": stats(unit)[0]}
        if c.kind == "scale":  # the names summary.json gave the raw means before the headline moved to them
            entry["base_raw"], entry["new_raw"] = entry["base"], entry["new"]
        out[c.id] = entry
    overall, dropped = stats(lambda r: overall_quality(r.scores))
    out["overall_quality"] = overall | {"kind": "overall", "scale": "mean 0-1", "dropped": dropped}
    return out


def _pattern_block(pairs: Pairs, resamples: int, seed: int) -> dict:
    """Per conversation pattern: the last answer's pass rate (eval/conversations.py) in A and in B over the prompts
    judged in both, with the user turns each side had. With the conversations in one folder and their last turns
    alone in the other (`eval generate --single-turn`), this is the single- against multi-turn comparison."""
    groups: dict[str, list[tuple[float, float]]] = defaultdict(list)
    turns: dict[str, tuple[set, set]] = defaultdict(lambda: (set(), set()))
    for x, y in pairs:
        px, py = turn_passes(x)[-1], turn_passes(y)[-1]
        if px is None or py is None:
            continue
        name = pattern_of(y if y.pattern or y.is_conversation else x)
        groups[name].append((float(px), float(py)))
        turns[name][0].add(x.turn)
        turns[name][1].add(y.turn)
    return {name: {"turns_a": sorted(turns[name][0]), "turns_b": sorted(turns[name][1]),
                   **paired_comparison([a for a, _ in groups[name]], [b for _, b in groups[name]],
                                       resamples=resamples, seed=seed)}
            for name in pattern_order(groups)}


def _any_score(r: EvalRecord) -> bool:
    return any(getattr(r.scores, c.id) is not None for c in default_rubric().criteria)


def _has_responses(records: dict[str, EvalRecord]) -> bool:
    return any(r.response.strip() for r in records.values())


def compare_runs(a: str | Path, b: str | Path, out: str | Path, *, resamples: int = 2000, seed: int = 0,
                 limit: int | None = None, missing: MissingPolicy = "paired") -> dict:
    """summary.json + report.md + charts in `out`; returns the summary. A is the baseline, B the new model.
    `limit` keeps A's first N prompts per group (and their pairs in B); `missing` is the missing-verdict policy."""
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing: expected one of {list(MISSING_POLICIES)}, got {missing!r}")
    a, b, out = Path(a), Path(b), Path(out)
    ra, rb = {r.id: r for r in first_per_group(judged_records(a), limit)}, {r.id: r for r in judged_records(b)}
    common = [i for i in ra if i in rb]
    if not common:
        raise InputError(b, f"no prompt in common with {a}; compare two evals of the same prompt set")
    harmful = [(ra[i], rb[i]) for i in common
               if ra[i].label == "harmful" and ra[i].benchmark not in COMPLIANCE_BENCHMARKS]
    both = [(x, y) for x, y in harmful if unit_scores(x.scores) is not None and unit_scores(y.scores) is not None]
    rubric = default_rubric()
    summary: dict = {
        "a": str(a), "b": str(b), "label_a": a.name, "label_b": b.name,
        "counts": {"a": len(ra), "b": len(rb), "common": len(common), "only_in_a": len(ra) - len(common),
                   "only_in_b": len(rb) - len(common), "harmful_scored_in_both": len(both)},
        "relative_definition": RELATIVE_DEFINITION,
        "overall_definition": rubric.overall_quality_definition(),
        "missing": {"policy": missing, "rule": MISSING_POLICIES[missing], "harmful_prompts": len(harmful)},
        "criteria": _criteria_block(harmful, missing, resamples, seed),
    }
    summary["missing"]["dropped"] = {k: e["dropped"] for k, e in summary["criteria"].items()}
    groups = defaultdict(list)
    for x, y in (both if missing == "paired" else harmful):  # a domain appears when it holds a counted verdict
        if missing == "paired" or _any_score(x) or _any_score(y):
            groups[x.domain or x.group].append((x, y))
    summary["per_group"] = {g: _criteria_block(p, missing, resamples, seed) for g, p in sorted(groups.items())}
    if any(r.pattern or r.is_conversation for r in [*ra.values(), *rb.values()]):
        summary["per_pattern"] = _pattern_block([(ra[i], rb[i]) for i in common], resamples, seed)
    benign = [(ra[i], rb[i]) for i in common if ra[i].label == "benign" and ra[i].scores.compliance
              and rb[i].scores.compliance]
    summary["benign_full_compliance"] = paired_comparison(
        [float(x.scores.compliance == "full_compliance") for x, _ in benign],
        [float(y.scores.compliance == "full_compliance") for _, y in benign], resamples=resamples, seed=seed)
    # verdicts imported without the responses they judged have nothing to check
    summary["checks"] = {} if not (_has_responses(ra) and _has_responses(rb)) else {
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


def _n(e: dict) -> str:
    """The prompts a figure rests on: one number when paired, A's and B's when not."""
    return str(e["n"]) if e["n"] is not None else f"{e['n_base']} / {e['n_new']}"


def _dropped(e: dict) -> str:
    d = e["dropped"]
    return str(d["pairs"]) if "pairs" in d else f"{d['a']} / {d['b']}"


def _row(name: str, e: dict, pct: bool) -> list[str]:
    return [name, fmt(e["base"], pct), fmt(e["new"], pct), fmt(e["difference"], pct), fmt(e["relative"], True),
            fmt_ci(e["relative_ci"], True), fmt_p(e["p_value"])]


def _rubric_table(s: dict) -> str:
    rubric = default_rubric()
    crit = s["criteria"]
    rows = []
    for c in rubric.criteria:
        e = crit[c.id]
        rows.append([c.name, e["scale"], _n(e), _dropped(e), fmt(e["base"], c.kind == "binary"),
                     fmt(e["new"], c.kind == "binary"), fmt(e["difference"], c.kind == "binary"),
                     fmt(e["relative"], True), fmt_ci(e["relative_ci"], True), fmt(e["unit"]["relative"], True),
                     fmt_p(e["p_value"])])
    q = crit["overall_quality"]
    rows.append(["Overall refusal quality", q["scale"], _n(q), _dropped(q), fmt(q["base"]), fmt(q["new"]),
                 fmt(q["difference"]), fmt(q["relative"], True), fmt_ci(q["relative_ci"], True),
                 fmt(q["relative"], True), fmt_p(q["p_value"])])
    paired = s["missing"]["policy"] == "paired"
    header = ["criterion", "scale", "n" if paired else "n (A / B)", "dropped" if paired else "dropped (A / B)",
              s["label_a"], s["label_b"], "difference", "relative (paper's scale)", "95 % interval (relative)",
              "relative on 0-1", "p"]
    return markdown_table(header, rows)


def _turns(values: list[int]) -> str:
    return ", ".join(map(str, values))


def _pattern_section(s: dict, out: Path) -> list[str]:
    """Single- vs multi-turn per pattern: the pass rates of A and B, and the user turns each side had."""
    la, lb, p = s["label_a"], s["label_b"], s["per_pattern"]
    rows = [[name, e["n"], _turns(e["turns_a"]), _turns(e["turns_b"]), fmt(e["base"], True), fmt(e["new"], True),
             fmt(e["difference"], True), fmt_ci(e["difference_ci"], True), fmt_p(e["p_value"])]
            for name, e in p.items()]
    names = list(p)
    bar_chart(out / "patterns.png", names, {la: [p[n]["base"] for n in names], lb: [p[n]["new"] for n in names]},
              intervals={la: [p[n]["base_ci"] for n in names], lb: [p[n]["new_ci"] for n in names]},
              title="Pass rate per pattern (the last answer meets the rubric's thresholds)", ylabel="pass rate")
    return ["## Single- vs multi-turn per pattern", "",
            "The pass rate of the last answer (it meets rubric.yaml's thresholds; in a conversation, the conversation "
            "criteria too) per conversation pattern, over the prompts judged in both. When one side holds the "
            "conversations and the other their last user turn alone (`eval generate --single-turn`), this is the "
            "single- against multi-turn comparison of the published crisis evaluations.", "",
            markdown_table(["pattern", "n", f"user turns ({la})", f"user turns ({lb})", f"{la} passed",
                            f"{lb} passed", "difference", "95 % interval", "p (paired)"], rows), "",
            "![patterns](patterns.png)", ""]


def _write_report(s: dict, out: Path) -> None:
    rubric = default_rubric()
    la, lb = s["label_a"], s["label_b"]
    crit = s["criteria"]
    c, m = s["counts"], s["missing"]
    paired = m["policy"] == "paired"
    dropped = (f"{crit['overall_quality']['dropped']['pairs']} of {m['harmful_prompts']} harmful prompts dropped"
               if paired else "dropped per criterion in the table (A / B)")
    md = [f"# Comparison: {la} (A, baseline) vs {lb} (B)", "",
          f"- A: `{s['a']}`", f"- B: `{s['b']}`",
          f"- Prompts: {c['common']} in both ({c['only_in_a']} only in A, {c['only_in_b']} only in B); "
          f"{m['harmful_prompts']} of them harmful, {c['harmful_scored_in_both']} with every criterion scored in both.",
          "- **Relative change** (the headline) = (B - A) / A on the paper's scale: the yes-rate of a yes/no "
          "criterion, the raw mean of a graded one, as the paper's evaluation code computes it. *Relative on 0-1* is "
          "the same change with each rating r scaled to (r - 1) / 4; for a graded criterion that is "
          "(m_B - m_A) / (m_A - 1), larger than the paper's figure.",
          f"- **Overall refusal quality**: {s['overall_definition']}.",
          f"- **Missing verdicts**: policy `{m['policy']}`: {m['rule']}; {dropped}.",
          "- Intervals: bootstrap 95 %" + (", prompts resampled in pairs; p: paired sign-flip permutation test."
                                           if paired else ", each folder resampled on its own; p: two-sample "
                                                          "permutation test."), "",
          "## Rubric (harmful prompts)", "", _rubric_table(s), "", "![criteria](criteria.png)", ""]
    names = [x.name for x in rubric.criteria] + ["Overall"]
    units = [crit[x.id]["unit"] for x in rubric.criteria] + [crit["overall_quality"]]
    bar_chart(out / "criteria.png", names, {la: [e["base"] for e in units], lb: [e["new"] for e in units]},
              intervals={la: [e["base_ci"] for e in units], lb: [e["new_ci"] for e in units]},
              title="Rubric on harmful prompts (0-1, 95 % bootstrap interval)", ylabel="score (0-1)")
    if s["per_group"]:
        md += ["## Per domain", "", markdown_table(["domain", "n", f"{la} overall", f"{lb} overall", "relative",
                                                    "95 % interval", "p"], [
            [g, _n(e["overall_quality"]), fmt(e["overall_quality"]["base"]), fmt(e["overall_quality"]["new"]),
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
    if s.get("per_pattern"):
        md += _pattern_section(s, out)
    b = s["benign_full_compliance"]
    header = ["figure", la, lb, "difference", "relative", "95 % interval (relative)", "p (paired)"]
    md += ["## Benign prompts and rule-based checks", "", markdown_table(header, [
        _row(f"benign: full compliance (n = {b['n']})", b, True),
        *[_row(f"{name.replace('_', ' ')} (n = {e['n']})", e, True) for name, e in s["checks"].items()]]), ""]
    if not s["checks"]:
        md += ["No rule-based checks: a folder holds verdicts without the responses they judged.", ""]
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
