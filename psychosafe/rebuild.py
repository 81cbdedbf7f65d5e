"""The main job: seeds -> balance -> responses (distilabel) -> curation -> report, into one run folder."""

from __future__ import annotations

import time
from pathlib import Path

from psychosafe.backends import check_llm, embedder_id, model_id
from psychosafe.config import RebuildConfig
from psychosafe.curation import balance_domains, curate, dedup_exact
from psychosafe.curation.curate import record_step
from psychosafe.executors import on_configured_executor
from psychosafe.runs import RunFolder
from psychosafe.schemas import Record, default_taxonomy, records_to_dataset

DEFAULT_RUNS_DIR = Path("runs")


def plan_strategies(records: list[Record]) -> list[Record]:
    """Each harmful prompt gets a strategy that fits its domain and intent (spread by id, not one per domain)."""
    taxonomy = default_taxonomy()
    return [r.model_copy(update={"strategy": taxonomy.choose_strategy(r.domain, r.intent, r.id)})
            if r.label == "harmful" else r for r in records]


@on_configured_executor  # every pipeline below runs locally or on Ray, as config.executor says
def synthesize(config: RebuildConfig, run: RunFolder, *, progress: bool = True) -> list[Record]:
    """Import seeds, dedup and balance them, and generate responses; saves `synthesized/dataset`."""
    from psychosafe.pipelines import generate_responses, import_seeds

    t = time.perf_counter()
    imported = import_seeds(config.seeds)  # bad input fails here, before any model loads
    check_llm(config.generator)
    run.start(config=config.model_dump(mode="json"), seed=config.seed,
              models={"generator": model_id(config.generator), "embedder": embedder_id(config.embedder)})
    run.write_rejected("seeds", imported.problems)
    run.record_stage("seeds", seconds=time.perf_counter() - t,
                     counts={"in": len(imported.records) + len(imported.problems), "kept": len(imported.records),
                             "rejected": len(imported.problems)})
    t = time.perf_counter()
    records = record_step(run, dedup_exact(imported.records), t)
    t = time.perf_counter()
    records = record_step(run, balance_domains(records, target=config.target, domains=config.domains,
                                             benign_fraction=config.benign_fraction, seed=config.seed), t)
    generated = generate_responses(plan_strategies(records), config.generator, run.synthesized, progress=progress)
    run.write_rejected("generate", generated.rejected)
    run.record_stage("generate", seconds=generated.seconds, counts={
        "in": len(records), "kept": len(generated.records), "rejected": len(generated.rejected),
        "generated_now": generated.generated_now, "resumed_from_batches": generated.resumed,
        "output_tokens": generated.output_tokens})
    records_to_dataset(generated.records).save_to_disk(str(run.synthesized / "dataset"), num_shards=1)
    return generated.records


def rebuild(config: RebuildConfig, run_dir: str | Path | None = None, *, progress: bool = True) -> RunFolder:
    """Synthesize and curate end to end. Reusing a run folder resumes it: finished batches are not redone."""
    run = RunFolder(run_dir) if run_dir else RunFolder.new(DEFAULT_RUNS_DIR, config.name)
    records = synthesize(config, run, progress=progress)
    curate(records, config, run, progress=progress)  # writes curated/, rejected/, report/ and the counts
    return run


def curate_run(config: RebuildConfig, run: RunFolder) -> RunFolder:
    """Curate what a run synthesized (the `curate` command on a run folder)."""
    from psychosafe.curation import curate_corpus

    return curate_corpus(run.path, config, run)
