"""The dataset card (README.md of the published repository): a Hub YAML header and a body rendered from
card_template.md through huggingface_hub's `DatasetCard.from_template`. Every table and number is computed here
from the run (the published records, manifest.json, review/summary.json) and from the schema files (taxonomy,
rubric, resource directory); every sentence is in the template."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from psychosafe.core.io import markdown_table
from psychosafe.schemas import (
    RECORD_FEATURES,
    UNKNOWN_LICENSE,
    Record,
    default_resources,
    default_rubric,
    default_taxonomy,
)

from ..checks import contact_table
from ..contamination import overlap_counts
from ..scores import JudgeTrust

CARD_TEMPLATE = Path(__file__).with_name("card_template.md")

# Manifest count keys shown as columns of the stage table (or too long for it) rather than as details.
_NOT_DETAILS = ("in", "kept", "rejected", "kept_per_domain")


@dataclass
class CardInputs:
    """Everything the card is computed from."""

    repo_id: str
    splits: dict[str, list[Record]]
    manifest: dict
    pretty_name: str
    license: str
    task_categories: list[str]
    tags: list[str]
    split_bytes: dict[str, int] = field(default_factory=dict)
    review_summary: dict | None = None
    judge_trust: JudgeTrust | None = None  # review/judge_trust.json: where the judge was trusted to filter
    require_review: bool = True
    blocked: int = 0  # records the guards block
    blocked_reasons: Counter = field(default_factory=Counter)  # reason -> records it blocks (a record can have several)
    blocked_included: bool = False  # --force: published anyway
    excluded: int = 0  # --exclude-blocked: records withheld
    empty_splits: list[str] = field(default_factory=list)  # left out of the repository
    source: str = "curated"  # the run's folder the records come from (review/dataset once reviewed)

    def records(self) -> list[Record]:
        return [r for rows in self.splits.values() for r in rows]


# -- the YAML header ---------------------------------------------------------------------------

def size_category(n: int) -> str:
    """The Hub's size_categories buckets."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
    for bound, name in bounds:
        if n < bound:
            return name
    return "n>1B"


def source_licenses(records: list[Record]) -> Counter:
    """(kind, dataset, license) -> records."""
    return Counter((r.source.kind, r.source.dataset, r.source.license) for r in records)


def card_licenses(inputs: CardInputs) -> list[str]:
    """The card's license first, then every other license a source carries (Hub ids are lower case)."""
    declared = {lic.lower() for (_, _, lic) in source_licenses(inputs.records()) if lic and lic != UNKNOWN_LICENSE}
    others = sorted(declared - {inputs.license.lower()})
    return [inputs.license.lower(), *others]


def uses_xstest(inputs: CardInputs) -> bool:
    if any("xstest" in (r.source.dataset or "").lower() for r in inputs.records()):
        return True
    seeds = (inputs.manifest.get("config") or {}).get("seeds") or []
    return any("xstest" in json.dumps(s).lower() for s in seeds)


def card_metadata(inputs: CardInputs) -> dict:
    """The YAML header: the Hub's fields, `configs` naming each split's shards, and `dataset_info` with the
    features as datasets writes them (so a loader and the Hub viewer see the same schema)."""
    import datasets
    from datasets.splits import SplitDict, SplitInfo

    records = inputs.records()
    licenses = card_licenses(inputs)
    sources = sorted({r.source.dataset for r in records if r.source.kind == "imported" and r.source.dataset})
    info = datasets.DatasetInfo(features=RECORD_FEATURES, splits=SplitDict(
        {name: SplitInfo(name, num_bytes=inputs.split_bytes.get(name, 0), num_examples=len(rows))
         for name, rows in inputs.splits.items()}))
    return {
        "license": licenses[0] if len(licenses) == 1 else licenses,
        "language": sorted({r.locale.split("-")[0] for r in records}) or ["en"],
        "task_categories": list(inputs.task_categories),
        "size_categories": [size_category(len(records))],
        "pretty_name": inputs.pretty_name,
        "tags": list(inputs.tags),
        # the Hub's convention: `original` for what this project wrote, `extended|<dataset>` for what it builds on
        "source_datasets": ((["original"] if any(r.source.kind != "imported" for r in records) else [])
                            + [f"extended|{s}" for s in sources]),
        "configs": [{"config_name": "default",
                     "data_files": [{"split": name, "path": f"data/{name}-*"} for name in inputs.splits]}],
        "dataset_info": info._to_yaml_dict(),
    }


# -- what the body's sentences are filled with -------------------------------------------------

def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "–"


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else ("–" if value is None else str(value))


def _pairs(items, sep: str = " ") -> str:
    """[('a', 1), ('b', 2)] -> 'a 1, b 2'."""
    return ", ".join(f"{k}{sep}{v}" for k, v in items)


def _flat(counts: dict, prefix: str = "") -> list[tuple[str, object]]:
    """{'reasons': {'a': 1}} -> [('reasons.a', 1)]; empty values are left out."""
    out = []
    for key, value in counts.items():
        if isinstance(value, dict):
            out += _flat(value, f"{prefix}{key}.")
        elif value not in (None, [], 0):
            out.append((f"{prefix}{key}", value))
    return out


def _details(counts: dict) -> list[tuple[str, object]]:
    return [(k, v) for k, v in _flat(counts) if k.split(".")[0] not in _NOT_DETAILS]


def _type_name(feature) -> str:
    if isinstance(feature, dict):
        return "struct{" + ", ".join(feature) + "}"
    dtype = getattr(feature, "dtype", None)
    if dtype is not None and dtype != "list":
        return str(dtype)
    inner = getattr(feature, "feature", None)
    return f"list[{_type_name(inner)}]" if inner is not None else type(feature).__name__


def _structure(inputs: CardInputs) -> dict:
    labels = {name: Counter(r.label for r in rows) for name, rows in inputs.splits.items()}
    total = sum(len(rows) for rows in inputs.splits.values())
    return {
        "splits_table": markdown_table(
            ["split", "records", "harmful", "benign"],
            [[name, len(rows), labels[name]["harmful"], labels[name]["benign"]] for name, rows in inputs.splits.items()]
            + [["**total**", total, sum(c["harmful"] for c in labels.values()),
                sum(c["benign"] for c in labels.values())]]),
        "fields": [(name, _type_name(feature)) for name, feature in RECORD_FEATURES.items()],
    }


def _taxonomy(inputs: CardInputs) -> dict:
    taxonomy = default_taxonomy()
    records = inputs.records()
    by_domain = {name: Counter(r.domain for r in rows) for name, rows in inputs.splits.items()}
    by_label = Counter((r.domain, r.label) for r in records)
    by_category = Counter((r.domain, r.category) for r in records)
    categories = [[d.id, c.id, c.description, by_category[(d.id, c.id)]]
                  for d in taxonomy.domains for c in d.categories]
    known = {(d.id, c.id) for d in taxonomy.domains for c in d.categories}
    order = taxonomy.domain_ids()
    # the tables' own cells, not sentences: what a record carries that the taxonomy lacks
    categories += [[dom, cat or "(none)", "not in the taxonomy" if cat else "no category recorded", n]
                   for (dom, cat), n in sorted(by_category.items(),
                                               key=lambda kv: (order.index(kv[0][0]), kv[0][1] or ""))
                   if (dom, cat) not in known]
    intents = Counter(r.intent for r in records)
    harmful = [r for r in records if r.label == "harmful"]
    used = Counter((r.strategy, r.domain) for r in harmful)
    return {
        "domains_table": markdown_table(
            ["domain", "name", *inputs.splits, "harmful", "benign", "total"],
            [[d.id, d.name, *[by_domain[s][d.id] for s in inputs.splits], by_label[(d.id, "harmful")],
              by_label[(d.id, "benign")], sum(by_domain[s][d.id] for s in inputs.splits)] for d in taxonomy.domains]),
        "categories_table": markdown_table(["domain", "category", "description", "records"], categories),
        "intents_table": markdown_table(
            ["intent", "description", "records"],
            [[i.id, i.description, intents[i.id]] for i in taxonomy.intents]
            + ([["(none)", "no intent recorded", intents[None]]] if intents[None] else [])),
        "strategies_table": markdown_table(
            ["strategy", "name", *order, "description"],
            [[s.id, s.name, *[used[(s.id, d)] for d in order], s.description] for s in taxonomy.strategies]),
        "no_strategy": sum(n for (s, _), n in used.items() if s is None),
    }


def _conversations(inputs: CardInputs) -> dict:
    """How many records are conversations, of which patterns (taxonomy.yaml) and how many user turns each."""
    taxonomy = default_taxonomy()
    records = inputs.records()
    conversations = [r for r in records if r.is_conversation]
    by_pattern = Counter(r.pattern for r in conversations)
    turns = Counter(r.turn for r in conversations)

    def row(pattern: str | None, name: str, label: str, description: str) -> list:
        rows = [r for r in conversations if r.pattern == pattern]
        counts = sorted({r.turn for r in rows})
        span = "–" if not counts else str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
        return [pattern or "(none)", name, label, description, by_pattern[pattern], span]

    return {
        "conversations": len(conversations), "conversation_pct": _pct(len(conversations), len(records)),
        "conversation_turns": ", ".join(f"{n} with {k} user turns" for k, n in sorted(turns.items())),
        "patterns_table": markdown_table(
            ["pattern", "name", "label", "how the risk unfolds", "conversations", "user turns"],
            [row(p.id, p.name, p.label, p.description) for p in taxonomy.patterns]
            # the table's own cells: an imported conversation need not name its pattern
            + ([row(None, "no pattern recorded", "", "")] if by_pattern[None] else [])),
    }


def _resources(inputs: CardInputs) -> dict:
    directory = default_resources()
    records = inputs.records()
    locales = sorted({r.locale for r in records})
    cited = Counter(rid for r in records for rid in r.resources)
    with_resource = sum(1 for r in records if r.label == "harmful" and r.resources)
    harmful = sum(1 for r in records if r.label == "harmful")
    return {
        "directory": directory, "locales": ", ".join(locales), "harmful": harmful, "with_resource": with_resource,
        "with_resource_pct": _pct(with_resource, harmful),
        # every service the records cite, under each of its locales (Samaritans: en-GB and en-IE; international
        # entries too), and the contacts table: each contact a response gives, its outcome and how many records
        "resources_table": markdown_table(
            ["id", "service", "locales", "domains", "cited by", "checked against"],
            [[r.id, r.name, ", ".join(r.locales) or "international", ", ".join(r.domains), cited[r.id],
              str(r.source)] for r in directory.resources if cited[r.id] or set(r.locales) & set(locales)]),
        "contacts_table": markdown_table(["contact", "outcome", "records"], contact_table(records)),
        "contamination_table": markdown_table(["eval set", "exact", "semantic", "records"],
                                              [[k, v["exact"], v["semantic"], v["records"]]
                                               for k, v in overlap_counts(records).items()]),
        "contaminated": sum(1 for r in records if r.checks.contamination),
    }


def _scores(inputs: CardInputs) -> dict:
    rubric = default_rubric()
    records = inputs.records()
    harmful = [r for r in records if r.label == "harmful"]
    rows = []
    for c in rubric.criteria:
        values = [getattr(r.scores, c.id) for r in harmful if getattr(r.scores, c.id, None) is not None]
        if values:
            rows.append([c.name, len(values), f"{_pct(sum(map(bool, values)), len(values))} yes" if c.kind == "binary"
                         else f"mean {sum(values) / len(values):.2f} (scale {c.min}-{c.max})"])
    # the paper's overall refusal quality: the mean of the four criteria, each scaled to 0-1
    overall = [q for r in harmful if (q := rubric.overall_quality(r.scores)) is not None]
    if overall:
        rows.append(["Overall refusal quality (0-1)", len(overall), f"mean {sum(overall) / len(overall):.3f}"])
    benign = Counter(getattr(r.scores, rubric.benign.id) for r in records if r.label == "benign")
    benign.pop(None, None)
    if benign:
        rows.append([f"{rubric.benign.name} (benign prompts)", sum(benign.values()),
                     _pairs((o.id, benign[o.id]) for o in rubric.benign.options)])
    return {"judges": list(Counter(r.scores.judge_model for r in records if r.scores.judge_model)),
            "scores_table": markdown_table(["criterion", "records scored", "result"], rows) if rows else None}


def _build(inputs: CardInputs) -> dict:
    manifest = inputs.manifest
    generation = Counter((r.generation.model, r.generation.backend, r.generation.template_version)
                         for r in inputs.records())
    versions = [[k, v or "not installed"] for k, v in (manifest.get("versions") or {}).items()]
    return {
        "manifest": manifest,
        "generation_table": markdown_table(["model", "backend", "template", "records"],
                                           [[m or "(none)", b or "(none)", t or "(none)", n]
                                            for (m, b, t), n in generation.most_common()]),
        "versions_table": markdown_table(["package", "version"], versions) if versions else None,
        "config_yaml": yaml.safe_dump(manifest["config"], sort_keys=False, allow_unicode=True).rstrip()
        if manifest.get("config") else None,
    }


def _curation(inputs: CardInputs) -> dict:
    stages = {n: s for n, s in (inputs.manifest.get("stages") or {}).items()
              if n != "publish" and isinstance(s, dict) and isinstance(s.get("counts"), dict)}
    counts = {n: s["counts"] for n, s in stages.items()}
    # the figures known stages produce, for the highlights above the full table
    dedup = {n: c.get("rejected", 0) for n, c in counts.items() if "dedup" in n}
    unverified = None
    if any("reasons" in c for c in counts.values()):
        unverified = sum(v for c in counts.values() for k, v in (c.get("reasons") or {}).items()
                         if k.startswith("unverified contact"))
    targets = ("target", "shortfall", "short_by")
    return {
        "stages": bool(stages),
        "dedup_removed": sum(dedup.values()), "dedup": _pairs(dedup.items(), ": ") if dedup else None,
        "collapse": [(n, _pairs(_details(c))) for n, c in counts.items() if "template" in n or "collapse" in n],
        "unverified_set_aside": unverified,
        "balance": [(n, _pairs((c.get("kept_per_domain") or {}).items()),
                     "".join(f"; {k} {v}" for k, v in _flat(c) if k.startswith(targets)))
                    for n, c in counts.items() if "balance" in n],
        "split_counts": [(n, _pairs(_flat(c))) for n, c in counts.items() if n.startswith("split")],
        "unverified_now": sum(1 for r in inputs.records() if r.checks.unverified_contacts),
        "stages_table": markdown_table(
            ["stage", "in", "kept", "set aside", "seconds", "details"],
            [[name, s["counts"].get("in", ""), s["counts"].get("kept", ""), s["counts"].get("rejected", ""),
              s.get("seconds", ""), _pairs(_details(s["counts"]), ": ")] for name, s in stages.items()]),
    }


def _review(inputs: CardInputs) -> dict:
    statuses = Counter(r.review.status for r in inputs.records())
    summary = inputs.review_summary or {}
    queue = summary.get("statuses") or {}
    agreement = summary.get("agreement") or {}
    return {
        "review_summary": summary,
        "release_statuses": _pairs(sorted(statuses.items())),
        "review_table": markdown_table(["status", "in the review queue", "in this release"],
                                       [[s, queue.get(s, 0), statuses.get(s, 0)]
                                        for s in ("accepted", "edited", "rejected", "pending")]),
        "agreement_tables": {key: markdown_table(["criterion", "metric", "value", "items"],
                                                 [[c, a.get("metric", ""), _fmt(a.get("value")), a.get("n", "")]
                                                  for c, a in table.items()])
                             for key, table in agreement.items() if table},
        **_judge_trust(inputs.judge_trust),
    }


def _judge_trust(trust: JudgeTrust | None) -> dict:
    """Kappa per criterion and whether the judge was trusted to filter on it."""
    if trust is None:
        return {"judge_trust": None}
    return {"judge_trust": trust,
            "trusted_criteria": ", ".join(c for c in trust.criteria if trust.trusts(c)),
            "untrusted_criteria": ", ".join(trust.untrusted()),
            "trust_table": markdown_table(["criterion", "kappa (judge vs annotators)", "metric", "pairs", "trusted"],
                                          [[c, _fmt(t.kappa), t.metric, t.pairs, "yes" if t.trusted else "no"]
                                           for c, t in trust.criteria.items()])}


def _sources_and_limits(inputs: CardInputs) -> dict:
    records = inputs.records()
    total = len(records)
    licenses = source_licenses(records)
    pending = sum(1 for r in records if r.review.status == "pending")
    return {
        "sources_table": markdown_table(
            ["source kind", "dataset", "license", "records"],
            [[k, d or "(psychosafe)", "**unknown**" if lic == UNKNOWN_LICENSE or (k == "imported" and not lic)
              else lic or inputs.license, n]
             for (k, d, lic), n in sorted(licenses.items(), key=lambda kv: -kv[1])]),
        "embedded": Counter(r.generation.backend for r in records).get("embedded", 0),
        "pending": pending, "pending_pct": _pct(pending, total),
        "unknown_license": sum(n for (kind, _, lic), n in licenses.items()
                               if lic == UNKNOWN_LICENSE or (kind == "imported" and not lic)),
        "uses_xstest": uses_xstest(inputs),
    }


def card_context(inputs: CardInputs) -> dict:
    """The template's variables: numbers, tables and lists, never sentences."""
    return {"repo_id": inputs.repo_id, "release_license": inputs.license, "total": len(inputs.records()),
            "source": inputs.source,
            "require_review": inputs.require_review, "blocked": inputs.blocked,
            "blocked_included": inputs.blocked_included, "excluded": inputs.excluded,
            "blocked_table": markdown_table(["reason", "records"],
                                            [[r, n] for r, n in inputs.blocked_reasons.most_common()]),
            "empty_splits": inputs.empty_splits,
            **_structure(inputs), **_taxonomy(inputs), **_conversations(inputs), **_resources(inputs),
            **_scores(inputs), **_build(inputs), **_curation(inputs), **_review(inputs), **_sources_and_limits(inputs)}


def render_card(inputs: CardInputs) -> str:
    """The card's text: the header from `card_metadata`, the body from the template."""
    from huggingface_hub import DatasetCard, DatasetCardData

    card = DatasetCard.from_template(DatasetCardData(**card_metadata(inputs)), template_path=str(CARD_TEMPLATE),
                                     **card_context(inputs))
    return str(card).rstrip() + "\n"  # Jinja drops the template's last line break

