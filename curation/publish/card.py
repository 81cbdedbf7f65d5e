"""The dataset card (README.md of the published repository): a Hub YAML header and a body whose every
table and number is computed from the run (the published records, manifest.json, review/summary.json)
and from the schema files (taxonomy, rubric, resource directory). Nothing here is typed in by hand
except prose."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from psychosafe.core.io import markdown_table
from psychosafe.schemas import RECORD_FEATURES, Record, default_resources, default_rubric, default_taxonomy


PSYCHOSAFE_BIBTEX = """@misc{barmina2026psychosafe,
  title         = {PsychoSafe: Eliciting Psychologically-Informed Refusals in Large Language Models},
  author        = {Barmina and others},
  year          = {2026},
  eprint        = {2606.09697},
  archivePrefix = {arXiv}
}"""

XSTEST_BIBTEX = """@inproceedings{rottger2024xstest,
  title     = {{XSTest}: A Test Suite for Identifying Exaggerated Safety Behaviours in Large Language Models},
  author    = {R{\\"o}ttger, Paul and Kirk, Hannah Rose and Vidgen, Bertie and Attanasio, Giuseppe and Bianchi, Federico and Hovy, Dirk},
  booktitle = {Proceedings of the 2024 Conference of the North American Chapter of the Association for Computational Linguistics (NAACL)},
  year      = {2024}
}"""

# What each top-level record field means (the schema gives the names and types; this gives the words).
FIELD_MEANINGS = {
    "id": "stable hash of the normalised prompt and domain: the same prompt has the same id in every run",
    "prompt": "the user message",
    "response": "the final response (after self-critique and revision, or the reviewer's correction)",
    "baseline_response": "the generator's generic refusal to the same prompt (for comparisons, and the rejected side of DPO pairs), when recorded",
    "label": "`harmful` (the model should decline and support) or `benign` (a contrast prompt it should answer)",
    "domain": "risk domain (taxonomy)",
    "category": "sub-category within the domain (taxonomy)",
    "intent": "intent level: curiosity, distress, ambivalence, escalating intent, crisis, coercion",
    "strategy": "the intervention strategy the response follows (taxonomy id)",
    "locale": "decides which support services apply",
    "resources": "ids of the resource-directory entries the response cites",
    "source": "where the prompt came from: kind, dataset, license, original id",
    "generation": "model, backend, prompt-template version, seed and revision rounds of the response",
    "critique": "the last self-critique of the response",
    "scores": "LLM-judge scores on the rubric's criteria, and the judge model",
    "checks": "rule-based results: refusal markers, verified resources, unverified contact details, pass/fail",
    "review": "human review: status, annotator count, human scores, the response before a reviewer's edit",
}

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
    require_review: bool = True
    blocked: int = 0  # records the guards block
    blocked_reasons: Counter = field(default_factory=Counter)  # reason -> records it blocks (a record can have several)
    blocked_included: bool = False  # --force: published anyway
    excluded: int = 0  # --exclude-blocked: records withheld
    empty_splits: list[str] = field(default_factory=list)  # left out of the repository
    source: str = "curated"  # the run's folder the records come from (review/dataset once reviewed)


# -- the YAML header ---------------------------------------------------------------------------

def size_category(n: int) -> str:
    """The Hub's size_categories buckets."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
    for bound, name in bounds:
        if n < bound:
            return name
    return "n>1B"


def _records(inputs: CardInputs) -> list[Record]:
    return [r for rows in inputs.splits.values() for r in rows]


def source_licenses(records: list[Record]) -> Counter:
    """(kind, dataset, license) -> records."""
    return Counter((r.source.kind, r.source.dataset, r.source.license) for r in records)


def card_licenses(inputs: CardInputs) -> list[str]:
    """The card's license first, then every other license a source carries (Hub ids are lower case)."""
    others = sorted({lic.lower() for (_, _, lic) in source_licenses(_records(inputs)) if lic} - {inputs.license.lower()})
    return [inputs.license.lower(), *others]


def uses_xstest(inputs: CardInputs) -> bool:
    if any("xstest" in (r.source.dataset or "").lower() for r in _records(inputs)):
        return True
    seeds = (inputs.manifest.get("config") or {}).get("seeds") or []
    return any("xstest" in json.dumps(s).lower() for s in seeds)


def card_metadata(inputs: CardInputs) -> dict:
    """The YAML header: the Hub's fields, `configs` naming each split's shards, and `dataset_info` with the
    features as datasets writes them (so a loader and the Hub viewer see the same schema)."""
    import datasets
    from datasets.splits import SplitDict, SplitInfo

    records = _records(inputs)
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


# -- the body ----------------------------------------------------------------------------------

def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "–"


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


def _guard_section(inputs: CardInputs) -> list[str]:
    total_blocked = inputs.blocked
    md = ["## Publication guards", "",
          f"Before publishing, every record is checked: no unverified contact details, rule-based checks passed, "
          f"not rejected in review{', and reviewed by a person' if inputs.require_review else ''} "
          f"(human review {'required' if inputs.require_review else 'not required'} by the publish config).", ""]
    if inputs.blocked_included:
        md += [f"> **Warning: published with `--force`.** {total_blocked} record(s) that the guards block are "
               f"included. Filter them out before use (see `checks` and `review`).", "",
               markdown_table(["reason", "records"], [[r, n] for r, n in inputs.blocked_reasons.most_common()]), ""]
    elif inputs.excluded:
        md += [f"{inputs.excluded} record(s) that the guards block were withheld from this release:", "",
               markdown_table(["reason", "records"], [[r, n] for r, n in inputs.blocked_reasons.most_common()]), ""]
    else:
        md += ["Every published record passed them.", ""]
    return md


def _uses_section(inputs: CardInputs) -> list[str]:
    return ["## What this corpus is for, and what it is not for", "",
            "**For:** training and evaluating language models to decline harmful requests about suicide and "
            "self-harm, substances, violence, weapons and sexual crimes *while supporting the person*: a gentle "
            "refusal, a self-help step from an evidence-based intervention strategy, verified professional "
            "resources for the person's locale and a hopeful close; benign contrast prompts teach a model when "
            "not to refuse. Also for research on refusal quality, LLM judges and human review.", "",
            "**Not for:** clinical use, crisis counselling or replacing professional care; deciding anything about "
            "real people; extracting harmful information (the responses contain none by construction); training a "
            "model to *produce* harmful prompts. The support services listed are for the locales below only and "
            "can change: check them before relying on them.", ""]


def _structure_section(inputs: CardInputs) -> list[str]:
    labels = {name: Counter(r.label for r in rows) for name, rows in inputs.splits.items()}
    total = sum(len(rows) for rows in inputs.splits.values())
    md = ["## Dataset structure", "",
          f"Records from the run's `{inputs.source}/`"
          + (" (the curated splits with the human review merged in)." if inputs.source.startswith("review") else "."),
          "",
          markdown_table(["split", "records", "harmful", "benign"],
                   [[name, len(rows), labels[name]["harmful"], labels[name]["benign"]]
                    for name, rows in inputs.splits.items()]
                   + [["**total**", total, sum(c["harmful"] for c in labels.values()),
                       sum(c["benign"] for c in labels.values())]]), ""]
    if inputs.empty_splits:
        md += [f"The run's {', '.join(f'`{s}`' for s in inputs.empty_splits)} split(s) hold no record in this release "
               "and are left out (a dataset split cannot be empty).", ""]
    features = RECORD_FEATURES
    md += ["Fields (one record schema for every split):", "",
           markdown_table(["field", "type", "meaning"],
                    [[f"`{name}`", _type_name(features[name]), FIELD_MEANINGS.get(name, "")] for name in features]), ""]
    return md


def _type_name(feature) -> str:
    if isinstance(feature, dict):
        return "struct{" + ", ".join(feature) + "}"
    dtype = getattr(feature, "dtype", None)
    if dtype is not None and dtype != "list":
        return str(dtype)
    inner = getattr(feature, "feature", None)
    return f"list[{_type_name(inner)}]" if inner is not None else type(feature).__name__


def _taxonomy_section(inputs: CardInputs) -> list[str]:
    taxonomy = default_taxonomy()
    records = _records(inputs)
    by_domain = {name: Counter(r.domain for r in rows) for name, rows in inputs.splits.items()}
    by_label = Counter((r.domain, r.label) for r in records)
    md = ["## Taxonomy", "", "Records per risk domain (domains in the taxonomy's order of risk: a prompt touching "
          "several takes the first):", "",
          markdown_table(["domain", "name", *inputs.splits, "harmful", "benign", "total"],
                   [[d.id, d.name, *[by_domain[s][d.id] for s in inputs.splits], by_label[(d.id, "harmful")],
                     by_label[(d.id, "benign")], sum(by_domain[s][d.id] for s in inputs.splits)]
                    for d in taxonomy.domains]), ""]
    by_category = Counter((r.domain, r.category) for r in records)
    rows = [[d.id, c.id, c.description, by_category[(d.id, c.id)]] for d in taxonomy.domains for c in d.categories]
    known = {(d.id, c.id) for d in taxonomy.domains for c in d.categories}
    order = taxonomy.domain_ids()
    rows += [[dom, cat or "(none)", "not in the taxonomy" if cat else "no category recorded", n]
             for (dom, cat), n in sorted(by_category.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1] or ""))
             if (dom, cat) not in known]
    md += ["Records per category:", "", markdown_table(["domain", "category", "description", "records"], rows), ""]
    intents = Counter(r.intent for r in records)
    md += ["Records per intent level:", "",
           markdown_table(["intent", "description", "records"],
                    [[i.id, i.description, intents[i.id]] for i in taxonomy.intents]
                    + ([["(none)", "no intent recorded", intents[None]]] if intents[None] else [])), ""]
    return md


def _strategies_section(inputs: CardInputs) -> list[str]:
    taxonomy = default_taxonomy()
    harmful = [r for r in _records(inputs) if r.label == "harmful"]
    used = Counter((r.strategy, r.domain) for r in harmful)
    domains = taxonomy.domain_ids()
    md = ["## Intervention strategies", "", "The strategy each harmful prompt's response follows, per domain "
          "(descriptions from the taxonomy):", "",
          markdown_table(["strategy", "name", *domains, "description"],
                   [[s.id, s.name, *[used[(s.id, d)] for d in domains], s.description] for s in taxonomy.strategies]), ""]
    unknown = sum(n for (s, _), n in used.items() if s is None)
    if unknown:
        md += [f"{unknown} harmful record(s) have no strategy recorded.", ""]
    return md


def _resources_section(inputs: CardInputs) -> list[str]:
    directory = default_resources()
    records = _records(inputs)
    locales = sorted({r.locale for r in records})
    cited = Counter(rid for r in records for rid in r.resources)
    with_resource = sum(1 for r in records if r.label == "harmful" and r.resources)
    harmful = sum(1 for r in records if r.label == "harmful")
    md = ["## Support services (resource directory)", "",
          f"Contact details in responses are checked against a directory of real services (version "
          f"{directory.version}, checked {directory.checked}); each entry names the public page it was checked "
          f"against. A phone number, URL or e-mail address not in the directory for the record's locale is an "
          f"*unverified contact detail* and blocks the record. {with_resource} of {harmful} harmful records "
          f"({_pct(with_resource, harmful)}) cite at least one verified service.", "",
          markdown_table(["id", "service", "locale", "domains", "cited by", "checked against"],
                   [[r.id, r.name, r.locale, ", ".join(r.domains), cited[r.id], str(r.source)]
                    for r in directory.resources if r.locale in locales]), ""]
    return md


def _scores_section(inputs: CardInputs) -> list[str]:
    rubric = default_rubric()
    records = _records(inputs)
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
                     ", ".join(f"{o.id} {benign[o.id]}" for o in rubric.benign.options)])
    judges = Counter(r.scores.judge_model for r in records if r.scores.judge_model)
    if not rows:
        return ["## Judge scores", "", "No record in this release carries LLM-judge scores.", ""]
    return ["## Judge scores", "", f"Scores from the LLM judge ({', '.join(f'`{j}`' for j in judges) or 'model not recorded'}) "
            "on the rubric's criteria (harmful prompts) and on compliance (benign prompts):", "",
            markdown_table(["criterion", "records scored", "result"], rows), ""]


def _build_section(inputs: CardInputs) -> list[str]:
    manifest = inputs.manifest
    records = _records(inputs)
    generation = Counter((r.generation.model, r.generation.backend, r.generation.template_version) for r in records)
    md = ["## How it was built", "",
          f"- Run: `{manifest.get('run_id', '?')}`, created {manifest.get('created', '?')}",
          f"- Command: `{manifest.get('command', '?')}`",
          f"- Seed: {manifest.get('seed', '?')}"]
    md += [f"- Model ({role}): `{model}`" for role, model in (manifest.get("models") or {}).items()]
    md += ["", "Responses per generating model, backend and prompt-template version:", "",
           markdown_table(["model", "backend", "template", "records"],
                    [[m or "(none)", b or "(none)", t or "(none)", n] for (m, b, t), n in generation.most_common()]), ""]
    versions = manifest.get("versions") or {}
    if versions:
        md += ["Package versions:", "", markdown_table(["package", "version"],
                                                  [[k, v or "not installed"] for k, v in versions.items()]), ""]
    if manifest.get("config"):
        md += ["<details><summary>Pipeline configuration (from the run's manifest)</summary>", "", "```yaml",
               yaml.safe_dump(manifest["config"], sort_keys=False, allow_unicode=True).rstrip(), "```", "",
               "</details>", ""]
    return md


def _curation_highlights(stages: dict) -> list[str]:
    """Known figures, when the stages that produce them ran; the full table follows anyway."""
    out = []
    dedup = {n: s["counts"].get("rejected", 0) for n, s in stages.items() if "dedup" in n}
    if dedup:
        out.append(f"- Duplicates removed: {sum(dedup.values())} ("
                   + ", ".join(f"{n}: {v}" for n, v in dedup.items()) + ")")
    for name, s in stages.items():
        if "template" in name or "collapse" in name:
            out.append(f"- Template collapse ({name}): "
                       + (", ".join(f"{k} {v}" for k, v in _details(s["counts"])) or "nothing found"))
    unverified = sum(v for s in stages.values() for k, v in (s["counts"].get("reasons") or {}).items()
                     if k.startswith("unverified contact"))
    if any("reasons" in s["counts"] for s in stages.values()):
        out.append(f"- Records set aside for unverified contact details: {unverified}")
    for name, s in stages.items():
        if "balance" in name:
            per_domain = s["counts"].get("kept_per_domain") or {}
            out.append(f"- Balance ({name}): " + (", ".join(f"{d} {n}" for d, n in per_domain.items())
                                                  or "no per-domain counts")
                       + "".join(f"; {k} {v}" for k, v in _flat(s["counts"])
                                 if k.startswith(("target", "shortfall", "short_by"))))
    for name, s in stages.items():
        if name.startswith("split"):
            out.append(f"- Splits ({name}): " + ", ".join(f"{k} {v}" for k, v in _flat(s["counts"])))
    return out


def _curation_section(inputs: CardInputs) -> list[str]:
    stages = {n: s for n, s in (inputs.manifest.get("stages") or {}).items()
              if n != "publish" and isinstance(s, dict) and isinstance(s.get("counts"), dict)}
    if not stages:
        return ["## Curation", "", "The run's manifest records no stages.", ""]
    unverified_now = sum(1 for r in _records(inputs) if r.checks.unverified_contacts)
    md = ["## Curation", "", "What every stage of the run did, in order (from the run's manifest; every record set "
          "aside is kept in the run's `rejected/` folder with its stage and reason):", ""]
    md += _curation_highlights(stages)
    md += [f"- Published records with an unverified contact detail: {unverified_now}", ""]
    md += [markdown_table(["stage", "in", "kept", "set aside", "seconds", "details"],
                    [[name, s["counts"].get("in", ""), s["counts"].get("kept", ""), s["counts"].get("rejected", ""),
                      s.get("seconds", ""), ", ".join(f"{k}: {v}" for k, v in _details(s["counts"]))]
                     for name, s in stages.items()]), ""]
    return md


def _review_section(inputs: CardInputs) -> list[str]:
    records = _records(inputs)
    statuses = Counter(r.review.status for r in records)
    summary = inputs.review_summary
    md = ["## Human review", ""]
    if not summary:
        md += [f"This run was not reviewed in Argilla (no `review/summary.json`). Review status of the published "
               f"records: {', '.join(f'{k} {v}' for k, v in sorted(statuses.items()))}.", ""]
        return md
    queue = summary.get("statuses") or {}
    md += [f"Records were reviewed in Argilla by {summary.get('annotators', '?')} annotator(s); labels were merged "
           f"by the `{summary.get('rule', '?')}` rule.", "",
           markdown_table(["status", "in the review queue", "in this release"],
                    [[s, queue.get(s, 0), statuses.get(s, 0)] for s in ("accepted", "edited", "rejected", "pending")]),
           ""]
    for key, title in (("human_vs_judge", "Agreement between people and the LLM judge"),
                       ("inter_annotator", "Agreement between annotators")):
        table = ((summary.get("agreement") or {}).get(key)) or {}
        if table:
            md += [f"{title}:", "", markdown_table(["criterion", "metric", "value", "items"],
                                              [[c, a.get("metric", ""), _fmt(a.get("value")), a.get("n", "")]
                                               for c, a in table.items()]), ""]
    return md


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else ("–" if value is None else str(value))


def _sources_section(inputs: CardInputs) -> list[str]:
    rows = source_licenses(_records(inputs))
    md = ["## Sources and licenses", "",
          f"This release is published under `{inputs.license}`. Records keep the license of the source their "
          "prompt came from:", "",
          markdown_table(["source kind", "dataset", "license", "records"],
                   [[k, d or "(psychosafe)", lic or (inputs.license if k != "imported" else "**unknown**"), n]
                    for (k, d, lic), n in sorted(rows.items(), key=lambda kv: -kv[1])]), ""]
    return md


def _limitations_section(inputs: CardInputs) -> list[str]:
    records = _records(inputs)
    total = len(records)
    md = ["## Limitations", "",
          "- Responses are written by a language model and checked by rules and an LLM judge; a response can be "
          "well-meant and still wrong for a particular person. None of this is clinical advice.",
          f"- Locales: {', '.join(sorted({r.locale for r in records}))} only; the services listed apply there "
          f"and were checked on {default_resources().checked}. Services change: recheck before use.",
          "- Prompts are short, single-turn and in English; real conversations escalate over several turns.",
          "- The taxonomy's five domains do not cover every kind of harm."]
    backends = Counter(r.generation.backend for r in records)
    if backends.get("embedded"):
        md.append(f"- {backends['embedded']} of {total} responses come from the embedded 135M-parameter model: "
                  "fit for checking the pipeline, not for training a model.")
    pending = sum(1 for r in records if r.review.status == "pending")
    if pending:
        md.append(f"- {pending} of {total} records ({_pct(pending, total)}) have not been reviewed by a person.")
    unknown = sum(n for (kind, _, lic), n in source_licenses(records).items() if kind == "imported" and not lic)
    if unknown:
        md.append(f"- {unknown} imported record(s) come from a source whose license was not recorded: check it "
                  "before redistributing.")
    if inputs.blocked_included:
        md.append(f"- Published with `--force`: {inputs.blocked} record(s) fail the "
                  "publication guards (see above).")
    return md + [""]


def _citation_section(inputs: CardInputs) -> list[str]:
    md = ["## Citation", "", "This corpus follows and rebuilds the PsychoSafe corpus:", "", "```bibtex",
          PSYCHOSAFE_BIBTEX, "```", ""]
    if uses_xstest(inputs):
        md += ["Benign contrast prompts come in part from XSTest (CC-BY-4.0):", "", "```bibtex", XSTEST_BIBTEX,
               "```", ""]
    return md


def render_card(inputs: CardInputs) -> str:
    header = yaml.safe_dump(card_metadata(inputs), sort_keys=False, allow_unicode=True, width=1000)
    total = sum(len(rows) for rows in inputs.splits.values())
    body = [f"# {inputs.pretty_name}", "",
            "> **Content warning.** This dataset contains prompts about suicide, self-harm, substance misuse, "
            "violence, weapons and sexual crimes. The prompts are short and non-graphic, and no response contains "
            "operational harm, but reading them can be distressing. If you are struggling, the services listed "
            "below are there for you.", "",
            f"{total} prompt-response pairs of *psychologically-informed refusals*: a model declines a harmful "
            "request and still supports the person behind it, with an evidence-based intervention strategy and a "
            "verified support service; benign contrast prompts get a helpful answer. Built with psychosafe.", "",
            "```python", "from datasets import load_dataset", "", f'ds = load_dataset("{inputs.repo_id}")', "```", ""]
    for section in (_guard_section, _uses_section, _structure_section, _taxonomy_section, _strategies_section,
                    _resources_section, _scores_section, _build_section, _curation_section, _review_section,
                    _sources_section, _limitations_section, _citation_section):
        body += section(inputs)
    return f"---\n{header}---\n\n" + "\n".join(body).rstrip() + "\n"


def read_review_summary(path: Path) -> dict | None:
    """review/summary.json as the review stage writes it, or None when the run was not reviewed."""
    if not path.is_file():
        return None
    from psychosafe.errors import InputError

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON: {exc.msg}", line=exc.lineno) from None
    if not isinstance(data, dict):
        raise InputError(path, f"expected an object with `statuses` and `agreement`, got {type(data).__name__}")
    return data
