"""Deduplication of prompts: exact (normalised text), then semantic (cosine similarity of embeddings)."""

from __future__ import annotations

import numpy as np

from psychosafe.schemas import Record, normalize_prompt

from .similarity import Pairs, choose_method, similar_pairs
from .steps import StepResult, best_first, reject


def dedup_exact(records: list[Record], *, name: str = "dedup_exact") -> StepResult:
    """Keep the best-scored record of each normalised prompt (ties: the first); the others point to it."""
    order = sorted(range(len(records)), key=lambda k: best_first(records[k])[0])  # stable: ties keep input order
    kept_id: dict[str, str] = {}
    dropped: dict[int, str] = {}
    for k in order:
        key = normalize_prompt(records[k].prompt)
        if key in kept_id:
            dropped[k] = kept_id[key]
        else:
            kept_id[key] = records[k].id
    kept = [r for k, r in enumerate(records) if k not in dropped]
    rejected = [reject(records[k], name, "exact_duplicate", f"exact duplicate prompt: same normalised text as {dup}",
                       duplicate_of=dup)
                for k, dup in sorted(dropped.items())]
    return StepResult(name, kept, rejected)


def resolve_duplicates(n: int, pairs: Pairs, order: list[int]) -> dict[int, tuple[int, float]]:
    """Greedy, best first: an item is dropped when it is similar to an item already kept, and points to the
    most similar such item. Unlike connected components this never drops A because A ~ B ~ C with A !~ C."""
    neighbours: dict[int, list[tuple[int, float]]] = {}
    for a, b, s in zip(pairs.i.tolist(), pairs.j.tolist(), pairs.similarity.tolist()):
        neighbours.setdefault(a, []).append((b, s))
        neighbours.setdefault(b, []).append((a, s))
    position = {k: p for p, k in enumerate(order)}
    kept: set[int] = set()
    dropped: dict[int, tuple[int, float]] = {}
    for k in order:
        matches = [(s, j) for j, s in neighbours.get(k, ()) if j in kept]
        if matches:
            s, j = max(matches, key=lambda m: (m[0], -position[m[1]]))  # most similar; ties: the better ranked
            dropped[k] = (j, s)
        else:
            kept.add(k)
    return dropped


def dedup_semantic(records: list[Record], vectors: np.ndarray, *, threshold: float, method: str = "auto",
                   ann_above: int = 20000, nprobe: int = 8, name: str = "dedup_semantic",
                   progress: bool = False) -> StepResult:
    """Prompts of the same label whose cosine similarity reaches `threshold` collapse to the best-scored one
    (ties by id). Benign contrast prompts are compared only with benign ones: they are written to look like
    harmful prompts, and removing them would teach a model to refuse the safe twin."""
    n = len(records)
    used = choose_method(n, method, ann_above)
    pairs = similar_pairs(vectors, threshold, method=used, nprobe=nprobe, progress=progress)
    labels = np.array([r.label for r in records])
    pairs = pairs.keep(labels[pairs.i] == labels[pairs.j]) if len(pairs) else pairs
    order = sorted(range(n), key=lambda k: best_first(records[k]))
    dropped = resolve_duplicates(n, pairs, order)
    kept = [r for k, r in enumerate(records) if k not in dropped]
    rejected = [reject(records[k], name, "near_duplicate",
                       f"near-duplicate prompt: cosine {s:.3f} >= {threshold} with {records[j].id}",
                       duplicate_of=records[j].id) for k, (j, s) in sorted(dropped.items())]
    return StepResult(name, kept, rejected, notes={"threshold": threshold, "method": used, "similar_pairs": len(pairs)})
