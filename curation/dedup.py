"""Deduplication of prompts: exact (normalised text), then semantic (cosine similarity of embeddings, with a
second stage for the pairs a cosine cannot decide).

Semantic dedup decides each pair of similar prompts in this order (benchmarks/bench_dedup_quality.py measured why):
  1. rules keep apart what is never one request: another label (a benign contrast prompt and its harmful twin are
     compared with nothing of the other label), another domain, another intent where both records carry one. Above
     the threshold such a pair is flagged for a person (one of the two is mislabelled, or they differ in one word);
  2. at or above `threshold` a pair merges (decided_by "threshold");
  3. in the review band [review_from, threshold), where rewordings and different requests on one topic mix, a pair
     never merges by cosine: the judges are asked whether it is the same request (decided_by "judge"), and without
     judges, or when they cannot say, the pair is flagged for review. Only each prompt's `band_neighbours` most
     similar band partners are asked about, among the prompts the threshold kept; likewise, of the pairs at or above
     the threshold that a rule keeps apart (other domain or intent), each prompt's `band_neighbours` closest are
     flagged, and all are counted.
Every merge is a `Rejected` with `duplicate_of`, `similarity` and `decided_by`, so a reviewer can undo it; every
flagged pair is a row of StepResult.flagged (the loop writes them to flagged/<step>.jsonl).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np

from psychosafe.core.config import EmbedderConfig, SemanticDedupConfig
from psychosafe.schemas import Record, normalize_turns

from .similarity import Pairs, choose_method, similar_pairs
from .steps import StepResult, best_first, reject

BAND_SEARCH_FACTOR = 4  # band partners searched per prompt, per band partner asked about
# (prompt a, prompt b) pairs -> one verdict each: True same request, False different, None cannot say
SameRequest = Callable[[list[tuple[str, str]]], list[bool | None]]


def dedup_exact(records: list[Record], *, name: str = "dedup_exact") -> StepResult:
    """Keep the best-scored record of each normalised prompt (ties: the first); the others point to it. A
    conversation is compared by all its user turns (`normalize_turns`)."""
    order = sorted(range(len(records)), key=lambda k: best_first(records[k])[0])  # stable: ties keep input order
    kept_id: dict[str, str] = {}
    dropped: dict[int, str] = {}
    for k in order:
        key = normalize_turns(records[k].user_turns)
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


@dataclass
class Flag:
    """A pair a person should look at: both prompts are kept."""

    a: Record
    b: Record
    similarity: float
    code: Literal["near_duplicate_other_domain", "near_duplicate_other_intent", "near_duplicate_review"]
    why: str

    def as_row(self, stage: str) -> dict:
        return {"stage": stage, "code": self.code, "ids": [self.a.id, self.b.id],
                "similarity": round(self.similarity, 4), "prompts": [self.a.prompt, self.b.prompt], "why": self.why}


def _rules(records: list[Record], pairs: Pairs) -> np.ndarray:
    """Per pair, why its two prompts (of one label) are never one request: "domain" (the domains differ), "intent"
    (both carry an intent and they differ) or "". Vectorised: a heavily duplicated corpus has millions of pairs."""
    _, domain = np.unique(np.array([r.domain for r in records], dtype=object).astype(str), return_inverse=True)
    _, intent = np.unique(np.array([r.intent or "" for r in records], dtype=object).astype(str), return_inverse=True)
    has_intent = np.array([bool(r.intent) for r in records])
    i, j = pairs.i, pairs.j
    ruled = np.full(len(pairs), "", dtype=object)
    ruled[has_intent[i] & has_intent[j] & (intent[i] != intent[j])] = "intent"
    ruled[domain[i] != domain[j]] = "domain"
    return ruled


def _top_band(pairs: Pairs, k: int) -> np.ndarray:
    """Mask of the pairs that are among the k most similar of either of their prompts."""
    keep = np.zeros(len(pairs), bool)
    for side in (pairs.i, pairs.j):
        order = np.lexsort((-pairs.similarity, side))  # by prompt, most similar first
        rank = np.empty(len(order), np.int64)
        starts = np.r_[0, np.flatnonzero(np.diff(side[order])) + 1]
        counts = np.diff(np.r_[starts, len(order)])
        rank[order] = np.arange(len(order)) - np.repeat(starts, counts)
        keep |= rank < k
    return keep


def dedup_semantic(records: list[Record], vectors: np.ndarray, *, threshold: float, review_from: float | None = None,
                   band_neighbours: int = 2, same_request: SameRequest | None = None, judge_name: str = "judge",
                   method: str = "auto", ann_above: int = 20000, nprobe: int | str = "auto",
                   name: str = "dedup_semantic", progress: bool = False) -> StepResult:
    """Near-duplicate prompts collapse to the best-scored one (ties by id), decided as the module says. Benign
    contrast prompts are compared only with benign ones: they are written to look like harmful prompts, and
    removing them would teach a model to refuse the safe twin. `same_request`: the judges' verdict on band pairs
    (`judge_name` names them in the provenance); None: band pairs are flagged."""
    n = len(records)
    used = choose_method(n, method, ann_above)
    # each prompt's nearest band partners only: a low band holds thousands per prompt in a large corpus. The
    # search keeps more than band_neighbours, for the partners the rules below set aside (benign twins above all)
    band_search = None if review_from is None else (review_from, BAND_SEARCH_FACTOR * band_neighbours)
    pairs = similar_pairs(vectors, threshold, method=used, nprobe=nprobe, band=band_search, progress=progress)
    labels = np.array([r.label for r in records])
    pairs = pairs.keep(labels[pairs.i] == labels[pairs.j]) if len(pairs) else pairs
    ruled = _rules(records, pairs) if len(pairs) else np.zeros(0, dtype=object)
    above = pairs.similarity >= threshold
    # pairs kept apart by a rule are flagged for a person, each prompt's band_neighbours closest only: a corpus that
    # repeats one request under many domains has millions of such pairs (all counted in the notes)
    apart = pairs.keep(above & (ruled != ""))
    apart_rules = ruled[above & (ruled != "")]
    shown = _top_band(apart, band_neighbours) if len(apart) else np.zeros(0, bool)
    flags = [Flag(records[a], records[b], s, f"near_duplicate_other_{rule}",
                  f"cosine {s:.3f} >= {threshold} but the {rule}s differ: the same request under two labels, or a "
                  f"request that differs in a word; kept both")
             for a, b, s, rule in zip(apart.i[shown].tolist(), apart.j[shown].tolist(),
                                      apart.similarity[shown].tolist(), apart_rules[shown])]
    order = sorted(range(n), key=lambda k: best_first(records[k]))
    decided_by = {(a, b): "threshold" for a, b in zip(pairs.i[above & (ruled == "")].tolist(),
                                                      pairs.j[above & (ruled == "")].tolist())}
    dropped = resolve_duplicates(n, pairs.keep(above & (ruled == "")), order)

    band = pairs.keep(~above & (ruled == ""))
    if len(band):
        band = band.keep(~np.isin(band.i, list(dropped)) & ~np.isin(band.j, list(dropped)))
        band = band.keep(_top_band(band, band_neighbours)) if len(band) else band
    verdicts: list[bool | None] = [None] * len(band)
    if same_request is not None and len(band):
        verdicts = same_request([(records[a].prompt, records[b].prompt)
                                 for a, b in zip(band.i.tolist(), band.j.tolist())])
    same = np.array([v is not None and bool(v) for v in verdicts], bool)
    for a, b, s, v in zip(band.i.tolist(), band.j.tolist(), band.similarity.tolist(), verdicts):
        if v is None:
            why = ("the judges could not say whether it is the same request" if same_request is not None else
                   "no judge is configured to say whether it is the same request")
            flags.append(Flag(records[a], records[b], s, "near_duplicate_review",
                              f"cosine {s:.3f} in the review band [{review_from}, {threshold}): {why}; kept both"))
    decided_by |= {(a, b): judge_name for a, b in zip(band.i[same].tolist(), band.j[same].tolist())}
    survivors = [k for k in order if k not in dropped]
    dropped |= resolve_duplicates(n, band.keep(same), survivors)

    kept = [r for k, r in enumerate(records) if k not in dropped]
    rejected = []
    for k, (j, s) in sorted(dropped.items()):
        by = decided_by[(min(k, j), max(k, j))]
        how = f">= {threshold}" if by == "threshold" else f"in the review band, judged the same request by {by}"
        rejected.append(reject(records[k], name, "near_duplicate",
                               f"near-duplicate prompt: cosine {s:.3f} {how}, with {records[j].id}",
                               duplicate_of=records[j].id, similarity=round(s, 4),
                               decided_by="threshold" if by == "threshold" else "judge"))
    merged = defaultdict(int)
    for r in rejected:
        merged[r.decided_by] += 1
    by_rule = {rule: int((ruled == rule).sum()) for rule in ("domain", "intent") if (ruled == rule).any()}
    notes = {"threshold": threshold, "review_from": review_from, "method": used, "similar_pairs": len(pairs),
             "merged_by": dict(merged), "kept_apart_by_rule": by_rule,
             "band_pairs": len(band), "judged_different": sum(v is not None and not v for v in verdicts),
             "flagged": len(flags)}
    return StepResult(name, kept, rejected, notes=notes, flagged=[f.as_row(name) for f in flags])


def locale_language(locale: str | None) -> str:
    """The language part of a locale: de for de-DE."""
    return (locale or "").split("-")[0].lower()


def dedup_by_language(records: list[Record], settings: SemanticDedupConfig,
                      vectors: Callable[[EmbedderConfig | None, list[Record]], np.ndarray], *,
                      same_request: SameRequest | None = None, judge_name: str = "judge",
                      name: str = "dedup_semantic", progress: bool = False) -> StepResult:
    """dedup_semantic with curation.dedup's settings, once per language of `settings.languages` (that language's
    embedder and thresholds, its prompts compared among themselves) and once for every other prompt (the run's
    embedder). `vectors(embedder, records)`: the records' prompt vectors by that embedder (None: the run's)."""
    groups: dict[str | None, list[int]] = {}
    for k, r in enumerate(records):
        language = locale_language(r.locale)
        groups.setdefault(language if language in settings.languages else None, []).append(k)
    results = {}
    for language, rows in groups.items():
        own = settings.languages.get(language) if language else None
        subset = [records[k] for k in rows]
        results[language] = dedup_semantic(
            subset, vectors(own.embedder if own else None, subset),  # own.embedder None: the run's
            threshold=own.threshold if own else settings.threshold,
            review_from=own.review_from if own else settings.review_from, band_neighbours=settings.band_neighbours,
            same_request=same_request, judge_name=judge_name, method=settings.method, ann_above=settings.ann_above,
            nprobe=settings.nprobe, name=name, progress=progress)
    if list(results) in ([None], []):
        return results.get(None) or StepResult(name, [], notes={"threshold": settings.threshold})
    dropped = {r.id for result in results.values() for r in result.rejected}
    position = {r.id: k for k, r in enumerate(records)}
    rejected = sorted((r for result in results.values() for r in result.rejected), key=lambda r: position[r.id])
    merged: dict[str, int] = defaultdict(int)
    for r in rejected:
        merged[r.decided_by] += 1
    notes = {"merged_by": dict(merged), "flagged": sum(len(x.flagged) for x in results.values()),
             "by_language": {language or "other": x.notes for language, x in results.items()}}
    return StepResult(name, [r for r in records if r.id not in dropped], rejected, notes=notes,
                      flagged=[row for x in results.values() for row in x.flagged])
