"""`review status`: how far the queue is, per domain and per annotator."""

from __future__ import annotations

from collections import Counter, defaultdict

from .client import ArgillaQueue
from .config import ReviewConfig
from .settings import LABELS


def review_status(config: ReviewConfig) -> dict:
    """Progress per domain (records, with a response, completed: as many submitted responses as the dataset
    asks for) and per annotator (submitted, draft, discarded)."""
    queue = ArgillaQueue(config)
    queue.require_manager()
    min_submitted = queue.min_submitted()
    records = queue.records(with_responses=True)
    per_domain: dict[str, Counter] = defaultdict(Counter)
    per_annotator: dict[str, Counter] = defaultdict(Counter)
    for q in records:
        counts = per_domain[q.metadata.get("domain", "unknown")]
        counts["records"] += 1
        counts["with_responses"] += bool(q.submitted())
        counts["completed"] += len(q.submitted()) >= min_submitted
        for a in q.annotations:
            per_annotator[a.user][a.status] += 1
    return {"url": queue.url, "dataset": config.dataset, "workspace": config.workspace, "records": len(records),
            "queues": {label: sum(1 for q in records if q.label == label) for label in LABELS},
            "min_submitted": min_submitted,
            "per_domain": {d: {k: c.get(k, 0) for k in ("records", "with_responses", "completed")}
                           for d, c in sorted(per_domain.items())},
            "per_annotator": {u: {k: c.get(k, 0) for k in ("submitted", "draft", "discarded")}
                              for u, c in sorted(per_annotator.items())}}
