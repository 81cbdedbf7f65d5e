"""`review pull`: the submitted answers merged into the run's records, written to `review/`: `dataset/` (the
run's DatasetDict with review merged in: same splits and features as `curated/`, which stays untouched),
`summary.json`, `disagreements.json`, `report.md` and `review.png`. Everything is read from the server before
anything is written, and the new `review/` replaces the old one only once complete, so a failed pull leaves
the run folder as it was."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from pathlib import Path

from psychosafe.core.io import staged_folder, write_json_atomic
from psychosafe.core.runs import RunFolder
from psychosafe.schemas import records_to_dataset

from .client import ArgillaQueue
from .config import ReviewConfig
from .figures import agreement_figures
from .merge import STATUSES, MergeResult, merge_reviews
from .report import write_review_report
from .selection import load_run_records


def pull_review(run: RunFolder, config: ReviewConfig, *, min_submitted: int | None = None) -> dict:
    """Fetch submitted responses, merge them into the run's records and write review/. Returns the summary.
    A record is decided once it has as many submitted responses as the dataset asks for (the value push set),
    or `min_submitted` when given."""
    t = time.perf_counter()
    splits = load_run_records(run)
    queue = ArgillaQueue(config)
    needed = min_submitted or queue.min_submitted()
    queue_records = queue.records(with_responses=True)
    merged = merge_reviews(splits, queue_records, rule=config.rule, min_submitted=needed)
    all_records = [r for records in merged.splits.values() for r in records]
    figures = agreement_figures([r for records in splits.values() for r in records], queue_records)
    statuses = Counter(r.review.status for r in all_records)
    summary = {
        "statuses": {s: statuses.get(s, 0) for s in STATUSES},
        "annotators": len(merged.annotators),
        "rule": config.rule,
        "agreement": {kind: {c: a.as_dict() for c, a in per.items()} for kind, per in figures.items()},
    }
    run_ids = {r.id for r in all_records}
    details = {"annotators": merged.annotators, "min_submitted": needed, "dataset": config.dataset,
               "workspace": config.workspace, "not_in_run": sum(1 for q in queue_records if q.id not in run_ids),
               "problems": merged.problems, "edited_with_unverified_contacts": merged.unverified_after_edit}
    _write_pull(run, merged, summary, details)
    run.record_stage("review_pull", seconds=time.perf_counter() - t,
                     counts=summary["statuses"] | {"annotators": summary["annotators"]})
    return summary


def _write_pull(run: RunFolder, merged: MergeResult, summary: dict, details: dict) -> None:
    import datasets

    with staged_folder(run.review) as staging:
        dataset = datasets.DatasetDict({name: records_to_dataset(rows) for name, rows in merged.splits.items()})
        dataset.save_to_disk(str(staging / "dataset"), num_shards={name: 1 for name in dataset})
        write_json_atomic(staging / "summary.json", summary)
        write_json_atomic(staging / "disagreements.json", merged.disagreements)
        write_review_report(staging, merged, summary, details)
        _carry_over(run.review, staging)


def _carry_over(old: Path, new: Path) -> None:
    """What other commands wrote into review/ (push.json) stays there: copied into the new folder."""
    if not old.is_dir():
        return
    for item in old.iterdir():
        if item.name.startswith(".") or (new / item.name).exists():
            continue
        if item.is_dir():
            shutil.copytree(item, new / item.name)
        else:
            shutil.copy2(item, new / item.name)
