"""Template collapse searches each distinct response once (issue 13's audit benchmark: one template answering
thousands of prompts was m^2/2 pairs). The groups must be exactly those of comparing every pair of turns."""

import numpy as np

from psychosafe.curation.collapse import detect_template_collapse
from psychosafe.schemas import Record, record_id

DOMAINS = ["suicide_self_harm", "substance", "violence"]


def _unit(rows):
    rows = np.asarray(rows, np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _every_pair_groups(vectors, owners, threshold, n_records):
    """The reference: owners joined by any two of their turns at cosine >= threshold, by brute force."""
    label = list(range(n_records))

    def find(x):
        while label[x] != x:
            x = label[x]
        return x

    sims = vectors @ vectors.T
    for p in range(len(vectors)):
        for q in range(p + 1, len(vectors)):
            if sims[p, q] >= threshold:
                a, b = find(int(owners[p])), find(int(owners[q]))
                label[max(a, b)] = min(a, b)
    groups = {}
    for k in range(n_records):
        groups.setdefault(find(k), []).append(k)
    return sorted(sorted(g) for g in groups.values() if len(g) >= 3)


def test_groups_equal_comparing_every_pair_with_repeats_near_copies_and_conversations():
    rng = np.random.default_rng(3)
    templates = _unit(rng.normal(size=(4, 16)))
    turns, owners = [], []
    for k in range(40):
        kind = k % 5
        if kind < 3:  # a template's exact copy
            turns.append(templates[k % 4])
        elif kind == 3:  # a near copy of a template (joins its group), or something unrelated
            turns.append(templates[k % 4] + rng.normal(scale=0.01 if k % 2 else 2.0, size=16))
        else:  # a conversation: two answers, the second a template, the first its own
            turns.append(rng.normal(size=16))
            owners.append(k)
            turns.append(templates[(k + 1) % 4])
        owners.append(k)
    vectors, owners = _unit(turns), np.array(owners)
    records = [Record(id=record_id(f"prompt {k}", DOMAINS[k % 3]), prompt=f"prompt {k}", response=f"answer {k}",
                      label="harmful", domain=DOMAINS[k % 3]) for k in range(40)]
    # a conversation whose two answers are the same text, and no one else's: no template
    records.append(Record(id=record_id("alone", "violence"), prompt="alone", response="same twice", label="harmful",
                          domain="violence"))
    alone = _unit(rng.normal(size=(1, 16)))[0]
    vectors = np.vstack([vectors, alone, alone])
    owners = np.concatenate([owners, [40, 40]])

    result = detect_template_collapse(records, vectors, owners=owners, threshold=0.95, min_group=3)
    found = {}
    for k, r in enumerate(result.kept):
        if r.checks.template_of:
            found.setdefault(r.checks.template_of, []).append(k)
    expected = _every_pair_groups(vectors, owners, 0.95, len(records))
    assert sorted(sorted(g) for g in found.values()) == expected
    assert len(expected) == 4 and result.notes["records_in_templates"] == sum(map(len, expected))
    assert not result.kept[40].checks.template_of


def test_one_template_over_many_records_is_one_group():
    vector = _unit(np.ones((1, 8)))[0]
    records = [Record(id=record_id(f"p{k}", "weapon"), prompt=f"p{k}", response="Call 911.", label="harmful",
                      domain="weapon") for k in range(5000)]
    result = detect_template_collapse(records, np.tile(vector, (5000, 1)), threshold=0.95, min_group=3,
                                      action="drop")
    assert result.notes["templates"] == 1 and result.notes["largest_template"] == 5000
    assert len(result.kept) == 1 and len(result.rejected) == 4999
