"""Evaluation contamination: corpus prompts that are prompts of an evaluation set.

A corpus assembled from public safety benchmarks (the published PsychoSafe corpus names SORRY-Bench, StrongREJECT,
HarmBench and OR-Bench as sources) can hold the very prompts a model is later evaluated on; training on them inflates
every score. Each prompt is compared with every set named in `curation.contamination.sets`, exactly (the normalised
text, as exact dedup compares) and semantically (cosine of the prompt embeddings at or above the threshold, by default
the dedup threshold). XSTest and HarmBench ship with psychosafe (package data of psychosafe.eval, read here as data);
StrongREJECT, SORRY-Bench or any other set is a local file read with a preset of configs/import_presets.yaml.
What is found is marked in `checks.contamination`; the step sets such records aside (`drop`), keeps them for a
held-out split (`holdout`: curate writes them to curated/held_out, never to train), or only marks them (`flag`).
"""

from __future__ import annotations

import importlib.util
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from psychosafe.core.config import EvalSet, SeedSource, import_presets
from psychosafe.errors import InputError
from psychosafe.pipelines.seeds import cell_text, read_rows
from psychosafe.schemas import Overlap, Record, normalize_prompt

from .steps import Step, StepContext, StepResult, reject

# shipped set -> (its file under psychosafe.eval's data folder, the preset that reads it)
SHIPPED_FILES = {"xstest": ("xstest/xstest_prompts.csv", "xstest"),
                 "harmbench": ("harmbench/harmbench_behaviors_text_all.csv", "harmbench")}
BLOCK_ROWS = 4096  # corpus prompts compared with every eval prompt at once


@dataclass
class EvalPrompts:
    name: str
    ids: list[str]
    prompts: list[str]


def shipped_file(name: str) -> Path:
    """A shipped eval set's file. It is package data of psychosafe.eval, found without importing that package (a
    later stage: curation reads its data, never its code)."""
    spec = importlib.util.find_spec("psychosafe.eval")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(name, "psychosafe.eval's data folder is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / SHIPPED_FILES[name][0]


def _files(path: Path) -> list[Path]:
    """A file, a saved dataset folder, or a folder of data files (a SORRY-Bench copy: one file per prompt style)."""
    if path.is_dir() and not (path / "dataset_info.json").is_file() and not (path / "dataset_dict.json").is_file():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".jsonl", ".json", ".csv", ".parquet"))
        if not files:
            raise InputError(path, "no .jsonl, .json, .csv or .parquet file in this folder")
        return files
    return [path]


def load_eval_set(spec: EvalSet) -> EvalPrompts:
    """The prompts of one eval set, with their ids (the set's own id column where its preset names one)."""
    path = shipped_file(spec.name) if spec.path is None else Path(spec.path)
    preset = spec.preset or (SHIPPED_FILES[spec.name][1] if spec.path is None else None) or \
        (spec.name if spec.name in import_presets() else None)
    ids, prompts = [], []
    for file in _files(path):
        source = SeedSource(path=str(file), preset=preset)
        name, rows = read_rows(source)
        column, id_column = source.column("prompt"), source.column("original_id")
        for line, row, problem in rows:
            if problem:
                raise InputError(name, problem, line=line)
            prompt = cell_text(row.get(column))
            if prompt:
                prompts.append(prompt)
                ids.append(cell_text(row.get(id_column)) or f"{file.name}:{line}")
        if not prompts:
            present = sorted({k for _, row, _ in rows if row for k in row})
            raise InputError(name, f"no prompt in column {column!r} (eval set '{spec.name}'); the file's columns are "
                                   f"{present}; name a preset that fits it", where="contamination.sets")
    return EvalPrompts(spec.name, ids, prompts)


def find_overlaps(records: list[Record], vectors: np.ndarray | None, sets: list[EvalPrompts],
                  set_vectors: list[np.ndarray] | None, *, threshold: float) -> dict[int, list[Overlap]]:
    """record index -> its overlaps: an exact one (normalised text) wherever there is one, else the most similar
    prompt of each set at cosine >= threshold. `vectors` None: exact matches only."""
    found: dict[int, list[Overlap]] = defaultdict(list)
    for k, s in enumerate(sets):
        exact = {normalize_prompt(p): i for i, p in enumerate(s.prompts)}
        hit = np.zeros(len(records), bool)
        for n, r in enumerate(records):  # a conversation: any of its user turns
            i = next((exact[key] for t in r.user_turns if (key := normalize_prompt(t)) in exact), None)
            if i is not None:
                hit[n] = True
                found[n].append(Overlap(benchmark=s.name, match="exact", similarity=1.0, benchmark_id=s.ids[i]))
        if vectors is None or set_vectors is None or not len(records):
            continue
        theirs = set_vectors[k]
        for start in range(0, len(records), BLOCK_ROWS):
            sims = vectors[start:start + BLOCK_ROWS] @ theirs.T
            best = sims.argmax(axis=1)
            score = sims[np.arange(len(best)), best]
            for row in np.flatnonzero(score >= threshold):
                n = start + int(row)
                if not hit[n]:
                    found[n].append(Overlap(benchmark=s.name, match="semantic", similarity=round(float(score[row]), 4),
                                            benchmark_id=s.ids[int(best[row])]))
    return found


def overlap_counts(records: list[Record]) -> dict[str, dict[str, int]]:
    """eval set -> {exact, semantic, records}: how many of the records overlap with it, and how."""
    out: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        for o in r.checks.contamination:
            out[o.benchmark][o.match] += 1
            out[o.benchmark]["records"] += 1
    return {name: {"exact": c["exact"], "semantic": c["semantic"], "records": c["records"]}
            for name, c in sorted(out.items())}


class Contamination(Step):
    """Marks prompts found in an eval set (checks.contamination) and, by `action`, sets them aside (drop), keeps
    them for the held-out split (holdout) or only marks them (flag)."""

    def __init__(self, sets: list[EvalSet], action: str = "drop", threshold: float = 0.835,
                 name: str = "contamination"):
        self.sets, self.action, self.threshold, self.name = sets, action, threshold, name

    def run(self, records: list[Record], context: StepContext) -> StepResult:
        sets = [load_eval_set(s) for s in self.sets]
        vectors = context.vectors("prompt", records) if records else None
        set_vectors = [context.embedder.embed(s.prompts, progress=context.progress, label=f"{s.name} prompts")[0]
                       for s in sets]
        found = find_overlaps(records, vectors, sets, set_vectors, threshold=self.threshold)
        marked = [r.model_copy(update={"checks": r.checks.model_copy(update={"contamination": found[k]})})
                  if k in found else r for k, r in enumerate(records)]
        kept, rejected = [], []
        for r in marked:
            if r.checks.contamination and self.action == "drop":
                rejected.append(reject(r, self.name, "eval_contamination", "prompt of an evaluation set: " + "; ".join(
                    f"{o.benchmark} {o.benchmark_id} ({o.match}" + (f", cosine {o.similarity:.3f})" if o.match ==
                                                                    "semantic" else ")")
                    for o in r.checks.contamination)))
            else:
                kept.append(r)
        return StepResult(self.name, kept, rejected, notes={
            "action": self.action, "threshold": self.threshold,
            "sets": {s.name: len(s.prompts) for s in sets}, "overlap": overlap_counts(marked),
            "held_out" if self.action == "holdout" else "marked": sum(1 for r in kept if r.checks.contamination)})
