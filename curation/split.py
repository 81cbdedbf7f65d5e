"""Deterministic, stratified splits: a fixed number of validation and test records per domain."""

from __future__ import annotations

import hashlib
from collections import defaultdict

from psychosafe.schemas import Record


def _order_key(seed: int, record: Record) -> str:
    return hashlib.sha256(f"{seed}:{record.id}".encode()).hexdigest()


def split_by_domain(records: list[Record], *, validation_per_domain: int, test_per_domain: int,
                    seed: int) -> tuple[dict[str, list[Record]], dict]:
    """Per domain, records are ordered by a seeded hash of their id (so a record's split does not depend
    on which other records are present), labels are interleaved so held-out sets keep harmful and
    benign prompts, then the first go to validation, the next to test, the rest to train. A domain too
    small for the asked counts keeps at least half its records for training; the shortfall is reported."""
    by_domain: dict[str, dict[str, list[Record]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        by_domain[r.domain][r.label].append(r)
    splits: dict[str, list[Record]] = {"train": [], "validation": [], "test": []}
    shortfall: dict[str, dict] = {}
    for domain in sorted(by_domain):
        lists = [sorted(v, key=lambda r: _order_key(seed, r)) for _, v in sorted(by_domain[domain].items())]
        ordered = []
        for i in range(max(map(len, lists))):  # interleave labels: harmful, benign, harmful, ...
            ordered += [lst[i] for lst in lists if i < len(lst)]
        n = len(ordered)
        held_out = min(validation_per_domain + test_per_domain, n // 2)
        n_val = min(validation_per_domain, (held_out + 1) // 2) if validation_per_domain else 0
        n_test = min(test_per_domain, held_out - n_val)
        if (n_val, n_test) != (validation_per_domain, test_per_domain):
            shortfall[domain] = {"records": n, "validation": n_val, "test": n_test}
        splits["validation"] += ordered[:n_val]
        splits["test"] += ordered[n_val:n_val + n_test]
        splits["train"] += ordered[n_val + n_test:]
    return splits, shortfall
