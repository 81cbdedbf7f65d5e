"""The curation stage: its steps in the order the data flows, writing curated/, rejected/, report/ and the
manifest. `rebuild` runs it on what it synthesized; `psychosafe curate` runs it on any corpus."""

from __future__ import annotations

import time
from pathlib import Path

import datasets
import numpy as np

from psychosafe.core.config import RebuildConfig, config_from_dict, load_rebuild_config
from psychosafe.core.runs import RunFolder
from psychosafe.schemas import Record, records_to_dataset

from .balance import balance_domains
from .checks import apply_checks
from .collapse import detect_template_collapse
from .dedup import dedup_exact, dedup_semantic
from .embed import CachedEmbedder
from .inputs import load_corpus
from .report import CurationAnalysis, write_report
from .scores import filter_scores
from .similarity import choose_method, nearest_similarity
from .split import prevent_leakage, split_by_domain
from .steps import StepResult

EMBEDDINGS_DIR = "embeddings"


def record_step(run: RunFolder, result: StepResult, started: float) -> list[Record]:
    """Write a step's rejections and counts into the run folder; return what it kept."""
    result.seconds = time.perf_counter() - started
    run.write_rejected(result.name, result.rejected)
    run.record_stage(result.name, seconds=result.seconds, counts=result.counts())
    return result.kept


def _embed(records: list[Record], config: RebuildConfig, run: RunFolder, progress: bool) -> dict[str, np.ndarray]:
    """Prompt and response vectors in record order, through the run folder's cache."""
    t = time.perf_counter()
    embedder = CachedEmbedder(config.embedder, run.path / EMBEDDINGS_DIR)
    out, counts = {}, {}
    for kind in ("prompt", "response"):
        out[kind], stats = embedder.embed([getattr(r, kind) for r in records], progress=progress, label=f"{kind}s")
        counts[kind] = {"texts": stats.texts, "computed": stats.computed, "cached": stats.cached}
    run.record_stage("embed", seconds=time.perf_counter() - t, counts={"in": len(records), **counts})
    return out


def curate(records: list[Record], config: RebuildConfig, run: RunFolder, *, progress: bool = False) -> datasets.DatasetDict:
    """exact dedup -> embeddings -> semantic dedup -> template collapse -> rule checks -> judge scores ->
    balance -> stratified split without leakage -> curated/ (save_to_disk + parquet) and report/."""
    cur = config.curation
    t = time.perf_counter()
    records = record_step(run, dedup_exact(records, name="prompt_dedup_exact"), t)

    vectors = _embed(records, config, run, progress)
    prompt_vectors = dict(zip((r.id for r in records), vectors["prompt"]))
    method = choose_method(len(records), cur.dedup.method, cur.dedup.ann_above)
    analysis = CurationAnalysis(
        dedup_threshold=cur.dedup.threshold, collapse_threshold=cur.template_collapse.threshold,
        prompt_nearest=nearest_similarity(vectors["prompt"], method=method, nprobe=cur.dedup.nprobe),
        response_nearest=nearest_similarity(vectors["response"][[k for k, r in enumerate(records) if r.response.strip()]],
                                            method=method, nprobe=cur.dedup.nprobe))

    search = {"method": cur.dedup.method, "ann_above": cur.dedup.ann_above, "nprobe": cur.dedup.nprobe}
    if cur.dedup.enabled:
        t = time.perf_counter()
        result = dedup_semantic(records, vectors["prompt"], threshold=cur.dedup.threshold, name="prompt_dedup_semantic",
                                progress=progress, **search)
        kept_rows = _rows_kept(records, result.kept)
        vectors = {kind: v[kept_rows] for kind, v in vectors.items()}
        records = record_step(run, result, t)

    t = time.perf_counter()
    tc = cur.template_collapse
    result = detect_template_collapse(records, vectors["response"], threshold=tc.threshold, min_group=tc.min_group,
                                      action=tc.action, **search)
    analysis.collapse = result.notes
    records = record_step(run, result, t)

    t = time.perf_counter()
    result = apply_checks(records, on_refusal_mismatch=cur.on_refusal_mismatch)
    analysis.checked = result.kept + [r.record for r in result.rejected]
    records = record_step(run, result, t)

    t = time.perf_counter()
    records = record_step(run, filter_scores(records, cur.min_scores), t)

    t = time.perf_counter()
    target = cur.balance.target or config.target
    benign_fraction = config.benign_fraction if cur.balance.benign_fraction is None else cur.balance.benign_fraction
    records = record_step(run, balance_domains(records, target=target, domains=config.domains, seed=config.seed,
                                               benign_fraction=benign_fraction, proportions=cur.balance.proportions,
                                               name="balance_curated"), t)

    t = time.perf_counter()
    splits, shortfall = split_by_domain(records, validation_per_domain=cur.splits.validation_per_domain,
                                        test_per_domain=cur.splits.test_per_domain, seed=config.seed)
    splits, leakage = prevent_leakage(splits, prompt_vectors, threshold=cur.leakage_threshold or cur.dedup.threshold,
                                      **search)
    dataset = datasets.DatasetDict({name: records_to_dataset(rows) for name, rows in splits.items()})
    run.curated.mkdir(parents=True, exist_ok=True)
    # one shard per split: datasets writes an empty split as zero shards, which load_from_disk cannot read
    dataset.save_to_disk(str(run.curated), num_shards={name: 1 for name in dataset})
    for name, split in dataset.items():
        split.to_parquet(str(run.curated / "parquet" / f"{name}.parquet"))
    run.record_stage("split", seconds=time.perf_counter() - t,
                     counts={name: len(rows) for name, rows in splits.items()} | {"shortfall": shortfall,
                                                                                  "leakage": leakage})
    run.update(counts={name: len(split) for name, split in dataset.items()})
    write_report(run, splits, analysis)
    return dataset


def _rows_kept(before: list[Record], kept: list[Record]) -> np.ndarray:
    """Positions in `before` of the records a step kept (steps keep order and never duplicate)."""
    kept_ids = {id(r) for r in kept}
    return np.array([k for k, r in enumerate(before) if id(r) in kept_ids], dtype=np.int64)


def curate_corpus(path: str | Path, config: RebuildConfig, run: RunFolder, *, progress: bool = False) -> RunFolder:
    """`psychosafe curate`: read any corpus (run folder, dataset folder, parquet, JSONL) and curate it into `run`.
    Bad input fails here, before any model loads."""
    from psychosafe.core.backends import embedder_id

    records = load_corpus(path)
    models = run.manifest().get("models", {}) | {"embedder": embedder_id(config.embedder)}  # a run keeps its generator's
    run.start(config=config.model_dump(mode="json"), seed=config.seed, models=models)
    run.update(curation_input={"path": str(path), "records": len(records)})
    curate(records, config, run, progress=progress)
    return run


def curation_config(path: str | Path | None, run: RunFolder, *, target: int | None = None) -> RebuildConfig:
    """The config file when one is named; else the config the run was built with (its manifest); else the
    library defaults (the paper's scale: 8019 records, 100 per domain in validation and in test)."""
    if path is not None:
        return load_rebuild_config(path, target=target)
    recorded = run.manifest().get("config") or {}
    return config_from_dict(recorded, RebuildConfig, {"target": target},
                            source=run.manifest_path if recorded else "the library defaults")
