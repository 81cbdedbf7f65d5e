"""The repository exactly as it will be pushed, written into `<run>/publish/`: parquet shards per split under
data/ and the dataset card. The records are `review/dataset` when the run was reviewed, else `curated/`."""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from psychosafe.core.io import staged_folder
from psychosafe.core.runs import RunFolder
from psychosafe.errors import InputError, PsychosafeError
from psychosafe.schemas import RECORD_FEATURES, Record, dataset_to_records, records_to_dataset

from ..scores import read_judge_trust
from .card import CardInputs, render_card
from .config import PublishConfig
from .guards import BlockedRecord, PublishBlocked, blocked_reasons, find_blocked, refusal_message

if TYPE_CHECKING:
    import datasets

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


@dataclass
class PublishResult:
    folder: Path
    repo_id: str
    splits: dict[str, int]
    files: list[str]
    blocked: list[BlockedRecord] = field(default_factory=list)
    forced: bool = False
    excluded: int = 0
    empty_splits: list[str] = field(default_factory=list)
    url: str | None = None
    commit: str | None = None
    tag: str | None = None

    def blocked_reasons(self) -> Counter:
        return blocked_reasons(self.blocked)


def load_curated(run: RunFolder) -> tuple[dict[str, datasets.Dataset], Path]:
    """The records to publish: `review/dataset` (curated/ with the human review merged in) when the run was
    reviewed, else `curated/`. A review older than the curation it reviewed is refused, not published."""
    import datasets

    if not (run.curated / "dataset_dict.json").is_file():
        raise InputError(run.curated, "no curated dataset (a DatasetDict saved with save_to_disk) in this run folder; "
                                      f"run `psychosafe curate --run-dir {run.path}` first")
    curated = dict(datasets.load_from_disk(str(run.curated)).items())
    reviewed_path = run.review / "dataset"
    if not (reviewed_path / "dataset_dict.json").is_file():
        return curated, run.curated
    reviewed = dict(datasets.load_from_disk(str(reviewed_path)).items())
    if {n: sorted(d["id"]) for n, d in reviewed.items()} != {n: sorted(d["id"]) for n, d in curated.items()}:
        raise InputError(reviewed_path, "holds other records than curated/ (was the run curated again after the last "
                                        f"review pull?): run `psychosafe review pull --run-dir {run.path}` again")
    return reviewed, reviewed_path


def read_review_summary(path: Path) -> dict | None:
    """review/summary.json as the review stage writes it, or None when the run was not reviewed."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON: {exc.msg}", line=exc.lineno) from None
    if not isinstance(data, dict):
        raise InputError(path, f"expected an object with `statuses` and `agreement`, got {type(data).__name__}")
    return data


def _write_shards(dataset, split: str, data_dir: Path, max_shard_bytes: int) -> tuple[list[str], int]:
    """Parquet shards named as `push_to_hub` names them; the datasets features travel in the parquet schema."""
    nbytes = dataset.data.nbytes
    num_shards = max(1, min(len(dataset), math.ceil(nbytes / max_shard_bytes)))
    names = []
    for index in range(num_shards):
        name = f"{split}-{index:05d}-of-{num_shards:05d}.parquet"
        dataset.shard(num_shards, index, contiguous=True).to_parquet(str(data_dir / name))
        names.append(f"data/{name}")
    return names, nbytes


def build_publish_folder(run_dir: str | Path, repo_id: str, config: PublishConfig, *, force: bool = False,
                         exclude_blocked: bool = False) -> PublishResult:
    """Write the repository exactly as it will be pushed into `<run>/publish/` (replacing an older one only
    once the new one is complete)."""
    if not REPO_ID.match(repo_id):
        raise InputError("--repo-id", f"expected ORG/NAME (letters, digits, '-', '_', '.'), got {repo_id!r}")
    if force and exclude_blocked:
        raise InputError("--force / --exclude-blocked", "choose one: publish the blocked records, or withhold them")
    t = time.perf_counter()
    run = RunFolder(run_dir)
    tables, source = load_curated(run)
    splits: dict[str, list[Record]] = {name: dataset_to_records(split) for name, split in tables.items()}
    review_summary = read_review_summary(run.review / "summary.json")
    trust = read_judge_trust(run)
    blocked = find_blocked(splits, require_review=config.require_review, trust=trust)
    if blocked and not (force or exclude_blocked):
        raise PublishBlocked(refusal_message(blocked, source))
    withheld = {b.id for b in blocked} if exclude_blocked else set()
    for name in splits:
        if tables[name].features != RECORD_FEATURES:  # curated with an older schema: publish the current one
            tables[name] = records_to_dataset(splits[name])
        if withheld:
            keep = [i for i, r in enumerate(splits[name]) if r.id not in withheld]
            tables[name], splits[name] = tables[name].select(keep), [splits[name][i] for i in keep]
    excluded = sum(1 for b in blocked if b.id in withheld)
    if not any(splits.values()):
        raise PsychosafeError(f"{source}: nothing to publish: no record "
                              + ("passes the guards" if excluded else "in any split"))
    # datasets cannot load a split without rows, so an empty split is left out of the repository (the card says so)
    empty_splits = [name for name, rows in splits.items() if not rows]
    splits = {name: rows for name, rows in splits.items() if rows}

    files, split_bytes = [], {}
    with staged_folder(run.publish) as staging:
        (staging / "data").mkdir()
        for name in splits:
            names, split_bytes[name] = _write_shards(tables[name], name, staging / "data", config.max_shard_bytes)
            files += names
        card = render_card(CardInputs(
            repo_id=repo_id, splits=splits, manifest=run.manifest(), pretty_name=config.pretty_name,
            license=config.license, task_categories=config.task_categories, tags=config.tags, split_bytes=split_bytes,
            review_summary=review_summary, judge_trust=trust, require_review=config.require_review,
            blocked=len(blocked), blocked_reasons=blocked_reasons(blocked), blocked_included=bool(blocked) and force,
            excluded=excluded,
            empty_splits=empty_splits, source=str(source.relative_to(run.path))))
        (staging / "README.md").write_text(card, encoding="utf-8")  # the staging folder makes it atomic
        files.append("README.md")
    result = PublishResult(folder=run.publish, repo_id=repo_id, splits={n: len(r) for n, r in splits.items()},
                           files=sorted(files), blocked=blocked, forced=bool(blocked) and force, excluded=excluded,
                           empty_splits=empty_splits)
    run.record_stage("publish", seconds=time.perf_counter() - t, counts={
        "in": sum(result.splits.values()) + excluded, "kept": sum(result.splits.values()), "rejected": excluded,
        "blocked": len(blocked), "forced": result.forced, "splits": result.splits})
    return result
