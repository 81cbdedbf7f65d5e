"""Balance: take a target number of records spread evenly over domains, labels and categories."""

from __future__ import annotations

import hashlib
from collections import defaultdict

from psychosafe.schemas import Record

from .steps import StepResult, reject


def _split(total: int, keys: list[str], shares: dict[str, float] | None = None) -> dict[str, int]:
    """Split `total` by `shares` (equal when none), largest remainders first, so the quotas sum to `total`."""
    if not shares:
        base, extra = divmod(total, len(keys))
        return {k: base + (1 if i < extra else 0) for i, k in enumerate(keys)}
    weight = sum(shares.get(k, 0.0) for k in keys)
    exact = {k: total * shares.get(k, 0.0) / weight for k in keys}
    quotas = {k: int(v) for k, v in exact.items()}
    by_remainder = sorted(keys, key=lambda k: (-(exact[k] - quotas[k]), keys.index(k)))
    for k in by_remainder[:total - sum(quotas.values())]:
        quotas[k] += 1
    return quotas


def share_of_quotas(total: int, quotas: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    """`total` spread over the (domain, label) groups in proportion to their quotas, first between the labels, then
    over each label's domains (largest remainders first, ties in the quotas' order): the shares sum to `total` (at
    most the quotas' sum), none is above its group's quota, and each label with a quota gets its part."""
    labels: dict[str, dict] = {}
    for group, q in quotas.items():
        labels.setdefault(group[1], {})[group] = q
    per_label = _proportional(total, {label: sum(groups.values()) for label, groups in labels.items()})
    return {g: n for label, groups in labels.items() for g, n in _proportional(per_label[label], groups).items()}


def _proportional(total: int, weights: dict) -> dict:
    if not total or not sum(weights.values()):
        return dict.fromkeys(weights, 0)
    return _split(total, list(weights), {k: float(w) for k, w in weights.items()})


def _seeded(seed: int, record: Record) -> str:
    return hashlib.sha256(f"{seed}:{record.id}".encode()).hexdigest()


def domain_quotas(target: int, domains: list[str], benign_fraction: float,
                  proportions: dict[str, float] | None = None) -> dict[tuple[str, str], int]:
    """(domain, label) -> how many records of the target: benign contrast prompts take `benign_fraction`, and
    each label's share is split over the domains equally or by `proportions`."""
    benign = round(target * benign_fraction)
    quota = {(d, "harmful"): q for d, q in _split(target - benign, domains, proportions).items()}
    return quota | {(d, "benign"): q for d, q in _split(benign, domains, proportions).items()}


def balance_domains(records: list[Record], *, target: int, domains: list[str], benign_fraction: float,
                    seed: int, proportions: dict[str, float] | None = None, name: str = "balance",
                    quotas: dict[tuple[str, str], int] | None = None) -> StepResult:
    """Quotas per domain (equal, or by `proportions`; benign contrast prompts taking `benign_fraction` of
    each; or `quotas` as given, (domain, label) -> how many), filled round-robin over categories in a seeded order.
    A short domain is reported, never padded."""
    kept, rejected = [], []
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        if r.domain in domains:
            groups[(r.domain, r.label)].append(r)
        else:
            rejected.append(reject(r, name, "domain_not_in_run",
                                   f"domain not in this run: {r.domain} is not among {domains}"))
    quota = quotas if quotas is not None else domain_quotas(target, domains, benign_fraction, proportions)
    shortfall = {}
    for domain in domains:
        for label in ("harmful", "benign"):
            q = quota.get((domain, label), 0)
            by_category: dict[str, list[Record]] = defaultdict(list)
            for r in sorted(groups[(domain, label)], key=lambda r: _seeded(seed, r)):
                by_category[r.category or ""].append(r)
            ordered = []  # round-robin over categories so a quota covers as many as it can
            for i in range(max((len(v) for v in by_category.values()), default=0)):
                ordered += [v[i] for _, v in sorted(by_category.items()) if i < len(v)]
            kept += ordered[:q]
            rejected += [reject(r, name, "over_quota", f"over target: the {label} quota of {domain} is {q}")
                         for r in ordered[q:]]
            if len(ordered) < q:
                shortfall[f"{domain}/{label}"] = q - len(ordered)
    return StepResult(name, kept, rejected, notes={"target": target, "shortfall": shortfall,
                                                   "short_by": sum(shortfall.values())})
