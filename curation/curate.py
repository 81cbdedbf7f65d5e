"""The curation stage: its steps in the order the data flows, writing curated/, rejected/ and the manifest."""

from __future__ import annotations

import time

import datasets

from psychosafe.config import CurationConfig
from psychosafe.runs import RunFolder
from psychosafe.schemas import Record, records_to_dataset

from .checks import apply_checks
from .dedup import dedup_exact
from .split import split_by_domain
from .steps import StepResult


def record_step(run: RunFolder, result: StepResult, started: float) -> list[Record]:
    """Write a step's rejections and counts into the run folder; return what it kept."""
    result.seconds = time.perf_counter() - started
    run.write_rejected(result.name, result.rejected)
    run.record_stage(result.name, seconds=result.seconds, counts=result.counts())
    return result.kept


def curate(records: list[Record], config: CurationConfig, run: RunFolder, *, seed: int,
           dedup: bool = True) -> datasets.DatasetDict:
    """dedup (exact) -> rule-based checks -> stratified split; saves `curated/` (save_to_disk + parquet)."""
    if dedup:
        t = time.perf_counter()
        records = record_step(run, dedup_exact(records), t)
    t = time.perf_counter()
    records = record_step(run, apply_checks(records, on_refusal_mismatch=config.on_refusal_mismatch), t)

    t = time.perf_counter()
    splits, shortfall = split_by_domain(records, validation_per_domain=config.splits.validation_per_domain,
                                        test_per_domain=config.splits.test_per_domain, seed=seed)
    dataset = datasets.DatasetDict({name: records_to_dataset(rows) for name, rows in splits.items()})
    run.curated.mkdir(parents=True, exist_ok=True)
    # one shard per split: datasets writes an empty split as zero shards, which load_from_disk cannot read
    dataset.save_to_disk(str(run.curated), num_shards={name: 1 for name in dataset})
    for name, split in dataset.items():
        split.to_parquet(str(run.curated / "parquet" / f"{name}.parquet"))
    run.record_stage("split", seconds=time.perf_counter() - t,
                     counts={name: len(rows) for name, rows in splits.items()} | {"shortfall": shortfall})
    return dataset
