"""Prompt synthesis from the taxonomy: plan the requests, have the model write them, keep the valid ones.

A harmful cell is domain x category x intent x persona; a benign contrast cell is domain x category x
contrast type x persona. Each cell gets N prompts (`prompts_per_cell`), each with a different mix of register,
length and ask style, so the prompts of a cell differ by design, not only by sampling. Cells are taken in a
seeded order that cycles through the categories first, so a small run still covers every category.
A share of harmful cells also touch a lower-risk domain: the record keeps the higher-risk one (a prompt touching
several domains takes the highest-risk one, suicide first).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from psychosafe.core.backends import model_id
from psychosafe.core.config import LLMConfig, SynthesisConfig
from psychosafe.schemas import Record, Rejected, Source, default_taxonomy, record_id

from .retries import run_with_retries
from .tasks import REQUEST_COLUMNS, SynthesizePrompt
from .templates import SYNTHESIS_VERSION

SYNTHESIS_STEP = "synthesize_prompt"
SYNTHETIC_DATASET = "psychosafe/synthesis"


def _rank(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()


def _unit(*parts: object) -> float:
    """A number in [0, 1) fixed by the parts."""
    return int(_rank(*parts)[:12], 16) / 16**12


def _cells(domain: str, label: str, personas: list[str], seed: int) -> list[tuple[str, str, str]]:
    """(category, intent or contrast type, persona) for one domain and label, in a seeded order that
    round-robins over the categories."""
    taxonomy = default_taxonomy()
    d = taxonomy.domain(domain)
    middle = d.intents if label == "harmful" else [c.id for c in taxonomy.contrast_types]
    by_category = {c: sorted(((c, m, p) for m in middle for p in personas),
                             key=lambda cell: _rank(seed, domain, label, *cell))
                   for c in d.category_ids()}
    ordered = []
    for group in itertools.zip_longest(*by_category.values()):
        ordered += [cell for cell in group if cell is not None]
    return ordered


def _styles(label: str, cell_key: str) -> list[tuple[str, str, str]]:
    """The cell's (register, length, ask style) mixes in a seeded order: slot k takes the k-th, so the N prompts
    of a cell differ."""
    taxonomy = default_taxonomy()
    asks = [a.id for a in taxonomy.ask_styles] if label == "harmful" else [""]
    mixes = list(itertools.product([r.id for r in taxonomy.registers], [x.id for x in taxonomy.lengths], asks))
    return sorted(mixes, key=lambda mix: _rank(cell_key, *mix))


@dataclass
class SynthesisPlan:
    requests: list[dict] = field(default_factory=list)
    need: dict[str, int] = field(default_factory=dict)      # "domain/label" -> prompts wanted
    prompts_per_cell: dict[str, int] = field(default_factory=dict)  # "domain/label" -> N used (raised if needed)
    cells: dict[str, int] = field(default_factory=dict)     # "domain/label" -> cells used


def plan_requests(need: dict[tuple[str, str], int], config: SynthesisConfig, *, locales: list[str],
                  seed: int) -> SynthesisPlan:
    """The synthesis requests that cover `need` ((domain, label) -> prompts) with `oversample` to spare."""
    taxonomy = default_taxonomy()
    personas = config.personas or [p.id for p in taxonomy.personas]
    order = taxonomy.domain_ids()
    plan = SynthesisPlan()
    for (domain, label), wanted in need.items():
        if wanted <= 0:
            continue
        group = f"{domain}/{label}"
        cells = _cells(domain, label, personas, seed)
        asked = math.ceil(wanted * config.oversample)
        per_cell = max(config.prompts_per_cell, math.ceil(asked / len(cells)))  # the target needs more per cell
        used = cells[:math.ceil(asked / per_cell)]
        plan.need[group], plan.prompts_per_cell[group], plan.cells[group] = wanted, per_cell, len(used)
        lower_risk = order[order.index(domain) + 1:]
        for category, middle, persona in used:
            cell_key = _rank(seed, domain, label, category, middle, persona)
            # fresh hashes for each choice: the cell order itself is sorted by cell_key
            secondary = ""
            if label == "harmful" and lower_risk and _unit(cell_key, "multi") < config.multi_domain_fraction:
                secondary = lower_risk[int(_rank(cell_key, "secondary"), 16) % len(lower_risk)]
            styles = _styles(label, cell_key)
            for slot in range(per_cell):
                register, length, ask = styles[slot % len(styles)]
                request = {"label": label, "domain": domain, "secondary_domain": secondary, "category": category,
                           "intent": middle if label == "harmful" else "curiosity", "persona": persona,
                           "register": register, "length": length, "ask_style": ask,
                           "contrast_type": middle if label == "benign" else "",
                           "locale": locales[int(_rank(cell_key, "locale"), 16) % len(locales)], "slot": str(slot)}
                request["id"] = "/".join([domain, label, category, middle, persona, str(slot)])
                plan.requests.append(request)
    return plan


@dataclass
class SynthesisResult:
    records: list[Record] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    seconds: float = 0.0


def synthesize_prompts(plan: SynthesisPlan, config: LLMConfig, out_dir: Path, *, retries: int, license: str,
                       taken: set[str] = frozenset(), progress: bool = True) -> SynthesisResult:
    """Have the model write every planned prompt (retrying answers that cannot be used), then keep, per
    domain and label, the first `need` valid prompts whose id is not `taken` (e.g. by seeds) or repeated.
    Everything else is set aside (stage "synthesis") with its reason and, for bad answers, the raw output."""
    start = time.perf_counter()
    rows = [{k: r[k] for k in REQUEST_COLUMNS if k != "last_error"} | {"slot": r["slot"]} for r in plan.requests]
    attempts = run_with_retries(
        rows,
        lambda load, llm, cfg: load >> SynthesizePrompt(name=SYNTHESIS_STEP, llm=llm, input_batch_size=cfg.batch_size),
        config, out_dir, step=SYNTHESIS_STEP, error=lambda row: row.get("synthesis_error") or
        (None if row.get("prompt") else "empty output"),
        retries=retries, name="psychosafe-synthesis", label="writing prompts", progress=progress)
    result = SynthesisResult()
    seen = set(taken)
    kept: Counter = Counter()
    reasons: Counter = Counter()
    model = model_id(config)
    for request in plan.requests:
        group = f"{request['domain']}/{request['label']}"
        if request["id"] in attempts.failed:
            reason, raw = attempts.failed[request["id"]]
            result.rejected.append(Rejected(stage="synthesis", code="unusable_output",
                                            reason=f"unusable prompt after {retries + 1} tries: {reason}",
                                            id=request["id"], domain=request["domain"], raw_output=raw,
                                            row=_json(request)))
            reasons["unusable"] += 1
            continue
        row = attempts.done[request["id"]]
        record = Record(id=record_id(row["prompt"], request["domain"]), prompt=row["prompt"], label=request["label"],
                        domain=request["domain"], category=request["category"], intent=request["intent"],
                        locale=request["locale"],
                        source=Source(kind="synthetic", dataset=SYNTHETIC_DATASET, license=license,
                                      original_id=request["id"]),
                        generation={"model": model, "backend": config.backend, "template_version": SYNTHESIS_VERSION,
                                    "seed": config.seed})
        if record.id in seen:
            result.rejected.append(Rejected.of(record, "synthesis", "exact_duplicate", "duplicate prompt: same "
                                               "normalised text as an earlier prompt", duplicate_of=record.id))
            reasons["duplicate"] += 1
        elif kept[group] >= plan.need[group]:
            result.rejected.append(Rejected.of(record, "synthesis", "over_quota",
                                               f"over target: {group} needs {plan.need[group]}"))
            reasons["over_target"] += 1
        else:
            seen.add(record.id)
            kept[group] += 1
            result.records.append(record)
    shortfall = {g: n - kept[g] for g, n in plan.need.items() if kept[g] < n}
    result.counts = {"requested": len(plan.requests), "kept": len(result.records), "rejected": len(result.rejected),
                     "reasons": dict(reasons), "need": plan.need, "shortfall": shortfall,
                     "prompts_per_cell": plan.prompts_per_cell, "cells": plan.cells,
                     "multi_domain": sum(1 for r in plan.requests if r["secondary_domain"]),
                     "output_tokens": attempts.output_tokens, **attempts.counts()}
    result.seconds = time.perf_counter() - start
    return result


def _json(row: dict) -> str:
    return json.dumps(row, ensure_ascii=False)


def count_cells(config: SynthesisConfig, domains: list[str]) -> dict[str, int]:
    """How many harmful and benign cells the taxonomy offers for these domains (the scale a rebuild can reach
    at `prompts_per_cell` prompts each)."""
    taxonomy = default_taxonomy()
    personas = len(config.personas or taxonomy.personas)
    cells: dict[str, int] = defaultdict(int)
    for d in map(taxonomy.domain, domains):
        cells["harmful"] += len(d.categories) * len(d.intents) * personas
        cells["benign"] += len(d.categories) * len(taxonomy.contrast_types) * personas
    return dict(cells)
