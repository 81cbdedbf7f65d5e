"""Deterministic, stratified splits: a fixed number of validation and test records per domain."""

from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np

from psychosafe.schemas import Record

from .similarity import connected_groups, similar_pairs


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


def prevent_leakage(splits: dict[str, list[Record]], vectors: dict[str, np.ndarray], *, threshold: float,
                    method: str = "auto", ann_above: int = 20000,
                    nprobe: int = 8) -> tuple[dict[str, list[Record]], dict]:
    """No near-duplicate prompt across splits. Prompts joined by a chain of pairs at `threshold` or above form
    a group; a group spanning several splits has its held-out members moved into train, so what a model is
    scored on never paraphrases what it was trained on. Returns the new splits and what was found and moved.
    `vectors`: record id -> prompt embedding."""
    names = list(splits)
    everyone = [(name, r) for name in names for r in splits[name]]
    if len(everyone) < 2:
        return splits, {"threshold": threshold, "pairs_across_splits": 0, "moved_to_train": 0, "remaining": 0}
    matrix = np.stack([vectors[r.id] for _, r in everyone])
    pairs = similar_pairs(matrix, threshold, method=method, ann_above=ann_above, nprobe=nprobe)
    split_of = np.array([names.index(name) for name, _ in everyone])
    across = int(np.sum(split_of[pairs.i] != split_of[pairs.j])) if len(pairs) else 0
    group = connected_groups(len(everyone), pairs)
    spans = {g for g in set(group.tolist()) if len(set(split_of[group == g].tolist())) > 1} if across else set()
    moved = [k for k, (name, _) in enumerate(everyone) if group[k] in spans and name != "train"]
    moving = set(moved)
    out = {name: [r for k, (n, r) in enumerate(everyone) if n == name and k not in moving] for name in names}
    out["train"] = out.get("train", []) + [everyone[k][1] for k in moved]
    new_split = np.array([names.index("train") if k in moving else s for k, s in enumerate(split_of)])
    remaining = int(np.sum(new_split[pairs.i] != new_split[pairs.j])) if len(pairs) else 0
    return out, {"threshold": threshold, "pairs_across_splits": across, "moved_to_train": len(moved),
                 "moved_ids": [everyone[k][1].id for k in moved], "remaining": remaining}
