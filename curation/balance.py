"""Balance: take a target number of records spread evenly over domains, labels and categories."""

from __future__ import annotations

import hashlib
from collections import defaultdict

from psychosafe.schemas import Record

from .steps import StepResult, reject


def _quotas(total: int, keys: list[str]) -> dict[str, int]:
    base, extra = divmod(total, len(keys))
    return {k: base + (1 if i < extra else 0) for i, k in enumerate(keys)}


def balance_domains(records: list[Record], *, target: int, domains: list[str], benign_fraction: float,
                    seed: int) -> StepResult:
    """Equal quotas per domain (benign contrast prompts taking `benign_fraction` of each), filled round-robin
    over categories in a seeded order. A short domain is reported, never padded with copies."""
    kept, rejected = [], []
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        if r.domain in domains:
            groups[(r.domain, r.label)].append(r)
        else:
            rejected.append(reject(r, "balance", f"domain not in this run: {r.domain} is not among {domains}"))
    benign_total = round(target * benign_fraction)
    quota = {("harmful", d): q for d, q in _quotas(target - benign_total, domains).items()}
    quota |= {("benign", d): q for d, q in _quotas(benign_total, domains).items()}
    shortfall = {}
    for domain in domains:
        for label in ("harmful", "benign"):
            q = quota[(label, domain)]
            by_category: dict[str, list[Record]] = defaultdict(list)
            for r in sorted(groups[(domain, label)], key=lambda r: hashlib.sha256(f"{seed}:{r.id}".encode()).hexdigest()):
                by_category[r.category or ""].append(r)
            ordered = []  # round-robin over categories so a quota covers as many as it can
            for i in range(max((len(v) for v in by_category.values()), default=0)):
                ordered += [v[i] for _, v in sorted(by_category.items()) if i < len(v)]
            kept += ordered[:q]
            rejected += [reject(r, "balance", f"over target: the {label} quota of {domain} is {q}") for r in ordered[q:]]
            if len(ordered) < q:
                shortfall[f"{domain}/{label}"] = q - len(ordered)
    return StepResult("balance", kept, rejected, notes={"target": target, "shortfall": shortfall})
