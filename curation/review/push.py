"""`review push`: the records the selection picks go into the queue. An Argilla record's id is our record id, so
pushing twice makes no duplicates and pushing a newer run updates only what changed, leaving annotations alone."""

from __future__ import annotations

import time

from psychosafe.core.backends import build_embedder, embedder_id
from psychosafe.core.io import write_json_atomic
from psychosafe.core.runs import RunFolder

from .client import ArgillaQueue
from .config import ReviewConfig
from .selection import load_run_records, select_records
from .settings import build_settings, record_fields, record_metadata


def push_review(run: RunFolder, config: ReviewConfig, *, progress: bool = True) -> dict:
    """Push the records the selection picks; new ones are created, changed ones updated (their annotations
    stay), unchanged ones are left alone. Writes review/push.json."""
    t = time.perf_counter()
    splits = load_run_records(run)  # bad input fails before the server or any model is touched
    rows = [(r, split) for split, records in splits.items() for r in records]
    chosen_ids = {r.id for r in select_records([r for r, _ in rows], config.select)}
    chosen = [(r, s) for r, s in rows if r.id in chosen_ids]
    queue = ArgillaQueue(config)
    embedder = build_embedder(config.embedder)
    dimensions = (getattr(embedder, "get_embedding_dimension", None) or embedder.get_sentence_embedding_dimension)()
    dataset = queue.dataset(create_with=build_settings(config, dimensions))
    existing = {q.id: q for q in queue.records(with_responses=True)}
    new, changed, unchanged, changed_annotated = [], [], 0, 0
    for record, split in chosen:
        current = existing.get(record.id)
        if current is None:
            new.append((record, split))
        elif current.fields != record_fields(record) or current.metadata != record_metadata(record, split):
            changed.append((record, split))
            changed_annotated += bool(current.annotations)
        else:
            unchanged += 1
    todo = new + changed
    vectors = embedder.encode([r.prompt for r, _ in todo], normalize_embeddings=True,
                              batch_size=config.embedder.batch_size).tolist() if todo else []
    queue.log(todo, vectors, progress=progress)
    result = {
        "url": queue.url, "workspace": config.workspace, "dataset": config.dataset, "dataset_id": str(dataset.id),
        "selection": config.select.model_dump(), "min_submitted": config.min_submitted,
        "embedder": embedder_id(config.embedder),
        "counts": {"in_run": len(rows), "selected": len(chosen), "created": len(new), "updated": len(changed),
                   "updated_with_annotations": changed_annotated, "unchanged": unchanged},
        "seconds": round(time.perf_counter() - t, 3),
    }
    write_json_atomic(run.review / "push.json", result)
    run.record_stage("review_push", seconds=time.perf_counter() - t, counts=result["counts"])
    return result
