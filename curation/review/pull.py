"""`review pull`: the submitted answers merged into the run's records, written to `review/`: `dataset/` (the
run's DatasetDict with review merged in: same splits and features as `curated/`, which stays untouched),
`summary.json`, `agreement.json` (every figure, per criterion and per annotator), `judge_trust.json` (which of the
judge's criteria curation and publish may trust), `disagreements.json`, `report.md` and its plots. Everything is
read from the server before anything is written, and the new `review/` replaces the old one only once complete, so
a failed pull leaves the run folder as it was."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

from psychosafe.core.io import staged_folder, write_json_atomic
from psychosafe.core.runs import RunFolder
from psychosafe.errors import InputError
from psychosafe.schemas import records_to_dataset

from ..scores import JUDGE_TRUST_FILE, JudgeTrust, decide_trust
from .client import ArgillaQueue
from .config import ReviewConfig
from .figures import CriterionAgreement, agreement_figures, reviewed_count
from .merge import STATUSES, MergeResult, merge_reviews
from .report import write_review_report
from .selection import load_run_records
from .settings import LABELS, build_settings


def pull_review(run: RunFolder, config: ReviewConfig, *, min_submitted: int | None = None) -> dict:
    """Fetch submitted responses, merge them into the run's records, measure agreement, decide which of the
    judge's criteria are trusted (review/judge_trust.json), and write review/. Returns the summary. A record is
    decided once it has as many submitted responses as the queues ask for (the value push set), or
    `min_submitted` when given. Refused before anything is written: a key that may not read every answer, a queue
    deleted, recreated or changed since the push."""
    t = time.perf_counter()
    splits = load_run_records(run)
    queue = ArgillaQueue(config)
    queue.require_manager()
    queue.check_unchanged(_pushed_queues(run, config, queue.url),
                          lambda label, dimensions: build_settings(config, dimensions, label))
    needed = min_submitted or queue.min_submitted()
    queue_records = queue.records(with_responses=True)
    merged = merge_reviews(splits, queue_records, rule=config.rule, min_submitted=needed)
    all_records = [r for records in merged.splits.values() for r in records]
    run_records = [r for records in splits.values() for r in records]
    figures = agreement_figures(run_records, queue_records, scale_weights=config.trust.scale_weights)
    trust = decide_trust({c: (f.human_vs_judge.metric, f.human_vs_judge.value, f.human_vs_judge.n)
                          for c, f in figures.items()},
                         reviewed=reviewed_count(run_records, queue_records), min_kappa=config.trust.min_kappa,
                         min_reviewed=config.trust.min_reviewed,
                         judge_models=sorted({r.scores.judge_model for r in run_records if r.scores.judge_model}))
    statuses = Counter(r.review.status for r in all_records)
    summary = {
        "statuses": {s: statuses.get(s, 0) for s in STATUSES},
        "annotators": len(merged.annotators),
        "rule": config.rule,
        "agreement": {"human_vs_judge": {c: f.human_vs_judge.as_dict() for c, f in figures.items()},
                      "inter_annotator": {c: f.inter_annotator.as_dict() for c, f in figures.items()}},
        "judge_trust": {"reviewed": trust.reviewed, "trusted": [c for c in trust.criteria if trust.trusts(c)],
                        "untrusted": trust.untrusted()},
    }
    run_ids = {r.id for r in all_records}
    details = {"annotators": merged.annotators, "min_submitted": needed, "dataset": config.dataset,
               "queues": [config.queue_name(label) for label in LABELS], "workspace": config.workspace,
               "not_in_run": sum(1 for q in queue_records if q.id not in run_ids),
               "problems": merged.problems, "edited_with_unverified_contacts": merged.unverified_after_edit}
    _write_pull(run, merged, summary, details, figures, trust)
    run.record_stage("review_pull", seconds=time.perf_counter() - t,
                     counts=summary["statuses"] | {"annotators": summary["annotators"], "reviewed": trust.reviewed,
                                                   "trusted_criteria": len(summary["judge_trust"]["trusted"])})
    return summary


def _pushed_queues(run: RunFolder, config: ReviewConfig, url: str) -> dict[str, dict]:
    """label -> the queue's id and settings when this run was pushed to the same queues (review/push.json)."""
    path = run.review / "push.json"
    if not path.is_file():
        return {}
    try:
        pushed = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON: {exc.msg}", line=exc.lineno) from None
    if pushed.get("url") != url or pushed.get("workspace") != config.workspace \
            or pushed.get("dataset") != config.dataset:
        return {}  # pushed elsewhere: only the settings can be checked
    return pushed.get("queues") or {}


def _write_pull(run: RunFolder, merged: MergeResult, summary: dict, details: dict,
                figures: dict[str, CriterionAgreement], trust: JudgeTrust) -> None:
    import datasets

    with staged_folder(run.review) as staging:
        dataset = datasets.DatasetDict({name: records_to_dataset(rows) for name, rows in merged.splits.items()})
        dataset.save_to_disk(str(staging / "dataset"), num_shards={name: 1 for name in dataset})
        write_json_atomic(staging / "summary.json", summary)
        write_json_atomic(staging / "agreement.json", {c: f.as_dict() for c, f in figures.items()})
        write_json_atomic(staging / JUDGE_TRUST_FILE, trust)
        write_json_atomic(staging / "disagreements.json", merged.disagreements)
        write_review_report(staging, merged, summary, details, figures, trust)
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
