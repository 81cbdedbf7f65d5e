"""`review push`: the records the selection picks go into the queues, harmful and benign each into its own. An
Argilla record's id is our record id, so pushing twice makes no duplicates and pushing a newer run updates only
what changed, leaving annotations alone. Once a pull has judged the judge (review/judge_trust.json), the records
it holds back on a criterion it is not trusted on are queued whatever the selection says. A run folder `psychosafe
audit` wrote into is pushed with the audit's flags beside each response (selection.run_flags)."""

from __future__ import annotations

import time

from psychosafe.core.backends import build_embedder, embedder_id
from psychosafe.core.io import write_json_atomic
from psychosafe.core.runs import RunFolder

from ..scores import read_judge_trust, untrusted_shortfalls
from .client import ArgillaQueue
from .config import ReviewConfig
from .findings import Flags
from .selection import findings_with, load_run_records, run_flags, select_records
from .settings import LABELS, build_settings, record_fields, record_metadata


def push_review(run: RunFolder, config: ReviewConfig, *, progress: bool = True, flags: Flags | None = None) -> dict:
    """Push the records the selection picks; new ones are created, changed ones updated (their annotations
    stay), unchanged ones are left alone. `flags`: record id -> findings from another source (an audit folder),
    added to those of the audit written into the run folder, if any; shown beside the response with the checks' own
    and queued by the `flagged` rule (narrowed by select.flags). Writes review/push.json."""
    t = time.perf_counter()
    splits = load_run_records(run)  # bad input fails before the server or any model is touched
    trust = read_judge_trust(run)
    rows = [(r, split) for split, records in splits.items() for r in records]
    extra = run_flags(run, flags)
    findings = {r.id: findings_with(r, extra.get(r.id, ())) for r, _ in rows}
    chosen_ids = {r.id for r in select_records([r for r, _ in rows], config.select, findings=findings, trust=trust)}
    chosen = [(r, s) for r, s in rows if r.id in chosen_ids]
    queue = ArgillaQueue(config)
    queue.require_manager()
    embedder = build_embedder(config.embedder)
    dimensions = (getattr(embedder, "get_embedding_dimension", None) or embedder.get_sentence_embedding_dimension)()
    labels = [label for label in LABELS if any(r.label == label for r, _ in chosen)]
    for label in labels:
        queue.dataset(label, create_with=build_settings(config, dimensions, label))
    existing = {q.id: q for q in queue.records(with_responses=True)} if labels else {}
    todo: dict[str, list] = {label: [] for label in labels}
    created, updated, unchanged, updated_annotated = 0, 0, 0, 0
    for record, split in chosen:
        current, found = existing.get(record.id), findings[record.id]
        if current is None:
            created += 1
        elif current.fields != record_fields(record, found) or current.metadata != record_metadata(record, split,
                                                                                                    found):
            updated += 1
            updated_annotated += bool(current.annotations)
        else:
            unchanged += 1
            continue
        todo[record.label].append((record, split, found))
    for label, batch in todo.items():
        if batch:
            vectors = embedder.encode([r.prompt for r, _, _ in batch], normalize_embeddings=True,
                                      batch_size=config.embedder.batch_size).tolist()
            queue.log(label, batch, vectors, progress=progress)
    result = {
        "url": queue.url, "workspace": config.workspace, "dataset": config.dataset,
        # what `review pull` checks the queues against: deleted, recreated or changed since is refused
        "queues": {label: queue.fingerprint(label) for label in labels},
        "selection": config.select.model_dump(), "min_submitted": config.min_submitted,
        "embedder": embedder_id(config.embedder),
        "counts": {"in_run": len(rows), "selected": len(chosen), "created": created, "updated": updated,
                   "with_audit_flags": sum(1 for r, _ in rows if extra.get(r.id)),
                   "updated_with_annotations": updated_annotated, "unchanged": unchanged,
                   "untrusted_judge": sum(1 for r, _ in rows if untrusted_shortfalls(r, trust)),
                   **{label: sum(1 for r, _ in chosen if r.label == label) for label in LABELS}},
        "seconds": round(time.perf_counter() - t, 3),
    }
    write_json_atomic(run.review / "push.json", result)
    run.record_stage("review_push", seconds=time.perf_counter() - t, counts=result["counts"])
    return result
