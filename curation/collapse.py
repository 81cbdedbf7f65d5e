"""Template collapse: one response text (near enough) answering many different prompts.

This is the failure of the paper's corpus, where one fixed refusal per domain answered thousands of
prompts; a model trained on it learns the template, not the person. Responses joined by a chain of
near-identical pairs form a group; a group of `min_group` or more is a template. Every member is marked
in `checks.template_of` (the id of the group's best-scored record); with `action: drop`, only that one stays.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from psychosafe.schemas import Record

from .similarity import Pairs, connected_groups, similar_pairs
from .steps import StepResult, best_first, reject


def detect_template_collapse(records: list[Record], vectors: np.ndarray, *, threshold: float, min_group: int,
                             owners: np.ndarray | None = None, action: str = "flag", method: str = "auto",
                             ann_above: int = 20000, nprobe: int = 8, name: str = "template_collapse") -> StepResult:
    """`vectors`: response embeddings, one per record, or one per assistant turn with `owners` (the record each turn
    belongs to): two records whose turns are near-identical join a group (a conversation repeating itself does not
    count). Records without a response take no part."""
    owners = np.arange(len(records)) if owners is None else np.asarray(owners)
    answered = np.flatnonzero([bool(records[k].response.strip()) for k in owners.tolist()])
    groups: dict[int, list[int]] = defaultdict(list)
    if len(answered):
        for k, label in enumerate(connected_groups(len(records), _owner_pairs(
                vectors[answered], owners[answered], threshold, method=method, ann_above=ann_above, nprobe=nprobe))):
            if records[k].response.strip():
                groups[int(label)].append(k)
    templates = [sorted(g, key=lambda k: best_first(records[k])) for g in groups.values() if len(g) >= min_group]
    head_of: dict[int, int] = {k: g[0] for g in templates for k in g}
    size_of: dict[int, int] = {k: len(g) for g in templates for k in g}
    marked = [r.model_copy(update={"checks": r.checks.model_copy(update={"template_of": records[head_of[k]].id})})
              if k in head_of else r for k, r in enumerate(records)]
    kept, rejected = [], []
    for k, r in enumerate(marked):
        if action == "drop" and k in head_of and head_of[k] != k:
            head = records[head_of[k]].id
            rejected.append(reject(r, name, "template_collapse", f"template collapse: response near-identical (cosine "
                                   f">= {threshold}) to the one of {head}, shared by {size_of[k]} prompts",
                                   duplicate_of=head))
        else:
            kept.append(r)
    responded = sum(1 for r in records if r.response.strip())
    rate = len(head_of) / responded if responded else 0.0
    return StepResult(name, kept, rejected, notes={
        "threshold": threshold, "action": action, "templates": len(templates),
        "records_in_templates": len(head_of), "collapse_rate": round(rate, 4),
        "largest_template": max((len(g) for g in templates), default=0),
        "collapse_per_domain": dict(sorted(_per_domain(records, head_of).items()))})


def _owner_pairs(vectors: np.ndarray, owners: np.ndarray, threshold: float, **search) -> Pairs:
    """Pairs of records (owners) whose responses are near-identical. Identical vectors (the same text: a corpus's
    template answering thousands of prompts) are searched once: the search sees each distinct response, and every
    owner of one is joined to the first owner of its group. Without this, one template shared by m records is m^2/2
    pairs (about 10^9 at 100k records on five templates) where m - 1 say the same."""
    seen: dict[bytes, int] = {}
    distinct = np.fromiter((seen.setdefault(v.tobytes(), len(seen)) for v in vectors), np.int64, len(vectors))
    first_rows = np.unique(distinct, return_index=True)[1]  # distinct ids count up in order of first appearance
    found = similar_pairs(vectors[first_rows], threshold, **search)
    group = connected_groups(len(seen), found)[distinct]  # each row's group of near-identical distinct responses
    labels, heads = np.unique(group, return_index=True)
    head_owner = np.empty(labels.max() + 1, np.int64)
    head_owner[labels] = owners[heads]
    a, b = owners, head_owner[group]
    across = a != b  # a conversation repeating itself joins nothing
    return Pairs(a[across], b[across], np.ones(int(across.sum()), np.float32))  # joins, not measured similarities


def _per_domain(records: list[Record], head_of: dict[int, int]) -> dict[str, float]:
    """Share of each domain's answered records that sit in a template."""
    total, hit = defaultdict(int), defaultdict(int)
    for k, r in enumerate(records):
        if r.response.strip():
            total[r.domain] += 1
            hit[r.domain] += k in head_of
    return {d: round(hit[d] / total[d], 4) for d in total}
