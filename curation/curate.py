"""The curation stage: the configured steps (registry.py) run by the one loop (steps.py), then the final split,
writing curated/, rejected/, report/ and the manifest. `rebuild` runs it on what it synthesized; `psychosafe curate`
runs it on any corpus."""

from __future__ import annotations

import time
from pathlib import Path

import datasets

from psychosafe.core.backends import embedder_id
from psychosafe.core.config import RebuildConfig, SeedSource, config_from_dict, load_rebuild_config
from psychosafe.core.runs import RunFolder
from psychosafe.schemas import Record, records_to_dataset

from .inputs import import_corpus
from .registry import build_steps
from .report import write_report
from .split import prevent_leakage, split_by_domain
from .steps import CurationAnalysis, StepContext, record_stage, run_steps

HELD_OUT_SPLIT = "held_out"  # curated/held_out: prompts of an evaluation set, kept out of train (contamination)


def curate(records: list[Record], config: RebuildConfig, run: RunFolder, *,
           progress: bool = False) -> datasets.DatasetDict:
    """The steps of `curation.steps` (by default: exact dedup -> embeddings -> semantic dedup -> template collapse
    -> rule checks -> judge scores -> balance), then the final stage: a stratified split without leakage ->
    curated/ (save_to_disk + parquet) and report/."""
    steps = build_steps(config)
    cur = config.curation
    context = StepContext(config, run, progress=progress, analysis=CurationAnalysis(
        dedup_threshold=cur.dedup.threshold, collapse_threshold=cur.template_collapse.threshold))
    records = run_steps(steps, records, context)
    splits, dataset = split_and_save(records, context)
    write_report(run, splits, context.analysis)
    return dataset


def split_and_save(records: list[Record], context: StepContext) -> tuple[dict[str, list[Record]], datasets.DatasetDict]:
    """The final stage ("split"): train / validation / test per domain, near-duplicate prompts across splits moved
    into train, written to curated/ (save_to_disk, and parquet per split)."""
    started = time.perf_counter()
    config, run = context.config, context.run
    cur = config.curation
    # prompts of an evaluation set (contamination: holdout) go to a split of their own, never train
    held_out = [r for r in records if r.checks.contamination] if cur.contamination.action == "holdout" else []
    records = [r for r in records if not (held_out and r.checks.contamination)]
    splits, shortfall = split_by_domain(records, validation_per_domain=cur.splits.validation_per_domain,
                                        test_per_domain=cur.splits.test_per_domain, seed=config.seed)
    held = [r for rows in splits.values() for r in rows]
    prompt_vectors = dict(zip((r.id for r in held), context.vectors("prompt", held)))
    splits, leakage = prevent_leakage(splits, prompt_vectors, threshold=cur.leakage_threshold or cur.dedup.threshold,
                                      method=cur.dedup.method, ann_above=cur.dedup.ann_above, nprobe=cur.dedup.nprobe)
    if held_out:  # after the leakage check, which would move a held-out member into train
        splits[HELD_OUT_SPLIT] = held_out
    dataset = datasets.DatasetDict({name: records_to_dataset(rows) for name, rows in splits.items()})
    run.curated.mkdir(parents=True, exist_ok=True)
    # one shard per split: datasets writes an empty split as zero shards, which load_from_disk cannot read
    dataset.save_to_disk(str(run.curated), num_shards={name: 1 for name in dataset})
    for name, split in dataset.items():
        split.to_parquet(str(run.curated / "parquet" / f"{name}.parquet"))
    record_stage(run, "split", time.perf_counter() - started,
                 {name: len(rows) for name, rows in splits.items()} | {"shortfall": shortfall, "leakage": leakage})
    run.update(counts={name: len(split) for name, split in dataset.items()})
    return splits, dataset


def curate_corpus(path: str | Path, config: RebuildConfig, run: RunFolder, *, source: SeedSource | None = None,
                  progress: bool = False) -> RunFolder:
    """`psychosafe curate`: read any corpus (run folder, dataset folder, parquet, JSONL, JSON array, CSV; through
    `source`'s preset or column mapping when given) and curate it into `run`. Bad input fails here, before any model
    loads."""
    imported = import_corpus(path, source)
    records = imported.records
    # a run folder keeps the generator it recorded; the embedder is the one curating now
    models = run.manifest().get("models", {}) | {"embedder": embedder_id(config.embedder)}
    run.start(config=config.model_dump(mode="json"), seed=config.seed, models=models)
    run.update(curation_input={"path": str(path), **imported.counts(),
                               **({"source": source.model_dump(mode="json")} if source else {})})
    if imported.out_of_scope:
        record_stage(run, "import", 0.0, {"in": len(records) + len(imported.out_of_scope), "kept": len(records),
                                          "rejected": len(imported.out_of_scope)}, imported.out_of_scope)
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
