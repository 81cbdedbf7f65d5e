"""Publish a curated run: build the exact Hub repository in `<run>/publish/` (parquet shards per split
under data/ and the dataset card), guard what may be published, and push it with huggingface_hub in one
commit."""

from __future__ import annotations

import math
import os
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from psychosafe.core.config import CONFIGS_DIR, load_config
from psychosafe.errors import InputError, PsychosafeError
from psychosafe.core.runs import RunFolder
from psychosafe.schemas import RECORD_FEATURES, Record, dataset_to_records, records_to_dataset

from .card import CardInputs, read_review_summary, render_card
from ..usable import blocking_reasons, describe

PUBLISH_CONFIG = CONFIGS_DIR / "publish.yaml"
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


class PublishConfig(BaseModel):
    """configs/publish.yaml: the card's Hub metadata and the guards."""

    model_config = ConfigDict(extra="forbid")

    pretty_name: str = Field("PsychoSafe psychologically-informed refusals", min_length=1)
    license: str = Field("cc-by-4.0", min_length=1, description="Hub license id of the release")
    task_categories: list[str] = Field(default_factory=lambda: ["text-generation"], min_length=1)
    tags: list[str] = Field(default_factory=lambda: ["safety", "refusal", "mental-health", "synthetic",
                                                     "not-for-all-audiences"])
    require_review: bool = Field(True, description="refuse records still pending human review")
    max_shard_bytes: int = Field(500_000_000, gt=0, description="split a split into parquet shards of about this size")


def load_publish_config(path: str | Path | None = None) -> PublishConfig:
    return load_config(path or PUBLISH_CONFIG, PublishConfig)


class PublishBlocked(PsychosafeError):
    """Records the guards refuse; the message says how many, why, and what to do."""


@dataclass
class BlockedRecord:
    id: str
    split: str
    reasons: list[str]


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
        return Counter(reason for b in self.blocked for reason in b.reasons)


# -- guards ------------------------------------------------------------------------------------

def find_blocked(splits: dict[str, list[Record]], *, require_review: bool) -> list[BlockedRecord]:
    return [BlockedRecord(r.id, name, describe(codes)) for name, rows in splits.items() for r in rows
            if (codes := blocking_reasons(r, require_review=require_review))]


def _refusal_message(blocked: list[BlockedRecord], source: Path) -> str:
    reasons = Counter(reason for b in blocked for reason in b.reasons)
    examples = ", ".join(f"{b.id} ({'; '.join(b.reasons)})" for b in blocked[:5])
    return (f"{source}: {len(blocked)} record(s) may not be published: "
            + ", ".join(f"{reason} {n}" for reason, n in reasons.most_common())
            + f". First: {examples}. Fix or review them (psychosafe review push/pull), set `require_review: false` "
              "in the publish config if human review is not wanted, pass --exclude-blocked to publish only the "
              "records that pass, or --force to publish them all (the card then says so).")


# -- the repository folder ---------------------------------------------------------------------

def load_curated(run: RunFolder) -> tuple[dict[str, "datasets.Dataset"], Path]:
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


def _as_records(split) -> list[Record]:
    return dataset_to_records(split)


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
    splits = {name: _as_records(split) for name, split in tables.items()}
    review_summary = read_review_summary(run.review / "summary.json")
    blocked = find_blocked(splits, require_review=config.require_review)
    if blocked and not (force or exclude_blocked):
        raise PublishBlocked(_refusal_message(blocked, source))
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

    tmp = run.path / f".publish.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "data").mkdir(parents=True)
    files, split_bytes = [], {}
    for name in splits:
        names, split_bytes[name] = _write_shards(tables[name], name, tmp / "data", config.max_shard_bytes)
        files += names
    card = render_card(CardInputs(
        repo_id=repo_id, splits=splits, manifest=run.manifest(), pretty_name=config.pretty_name,
        license=config.license, task_categories=config.task_categories, tags=config.tags, split_bytes=split_bytes,
        review_summary=review_summary, require_review=config.require_review, blocked=len(blocked),
        blocked_reasons=Counter(reason for b in blocked for reason in b.reasons),
        blocked_included=bool(blocked) and force, excluded=excluded, empty_splits=empty_splits,
        source=str(source.relative_to(run.path))))
    (tmp / "README.md").write_text(card, encoding="utf-8")
    files.append("README.md")
    shutil.rmtree(run.publish, ignore_errors=True)
    os.replace(tmp, run.publish)
    result = PublishResult(folder=run.publish, repo_id=repo_id, splits={n: len(r) for n, r in splits.items()},
                           files=sorted(files), blocked=blocked, forced=bool(blocked) and force, excluded=excluded,
                           empty_splits=empty_splits)
    run.record_stage("publish", seconds=time.perf_counter() - t, counts={
        "in": sum(result.splits.values()) + excluded, "kept": sum(result.splits.values()), "rejected": excluded,
        "blocked": len(blocked), "forced": result.forced, "splits": result.splits})
    return result


# -- the push ----------------------------------------------------------------------------------

def push_folder(result: PublishResult, *, private: bool = False, revision: str | None = None, tag: str | None = None,
                token: str | None = None, endpoint: str | None = None, commit_message: str | None = None) -> PublishResult:
    """Create the dataset repo if missing, then one commit that makes `data/` and the card on `revision`
    exactly the folder's (older shards that the folder lacks are deleted); tag that commit if asked.
    The token comes from `token`, HF_TOKEN or the user's login, and is never printed."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, constants, get_token
    from huggingface_hub.errors import HfHubHTTPError

    if constants.is_offline_mode():
        raise PsychosafeError("HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set: unset it to publish, or use --dry-run")
    token = token or get_token()
    if not token:
        raise PsychosafeError("no Hugging Face token: set HF_TOKEN or run `hf auth login`, then publish again "
                              "(or use --dry-run to only build the folder)")
    api = HfApi(endpoint=endpoint, token=token)
    repo_id = result.repo_id
    branch = revision or "main"
    step = "create the repository"
    commit = None
    try:
        repo_url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        if private:  # the Hub ignores `private` for a repository that exists: never publish into a public one
            step = "read the repository's visibility"
            if not api.dataset_info(repo_id).private:
                raise PsychosafeError(f"{repo_id} exists and is public, but --private was asked: nothing was "
                                      "uploaded. Make it private in its settings on the Hub, or publish without --private.")
        if branch != "main":
            step = f"create the branch {branch}"
            api.create_branch(repo_id, branch=branch, repo_type="dataset", exist_ok=True)
        step = "list the repository's files"
        remote = api.list_repo_files(repo_id, repo_type="dataset", revision=branch)
        local = set(result.files)
        operations = [CommitOperationDelete(path_in_repo=p) for p in sorted(remote)
                      if p.startswith("data/") and p not in local]
        operations += [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(result.folder / p)) for p in result.files]
        step = "commit"
        counts = ", ".join(f"{name} {n}" for name, n in result.splits.items())
        message = commit_message or f"psychosafe: publish {sum(result.splits.values())} records ({counts})"
        description = (f"Built by `psychosafe publish` from run `{result.folder.parent.name}`."
                       + (" Published with --force: some records fail the publication guards (see the card)."
                          if result.forced else ""))
        commit = api.create_commit(repo_id, operations, commit_message=message, commit_description=description,
                                   repo_type="dataset", revision=branch)
        if tag:
            step = f"tag the commit {tag}"
            api.create_tag(repo_id, tag=tag, revision=commit.oid, repo_type="dataset", tag_message=message)
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        hint = {401: " The token was refused: check HF_TOKEN or log in again.",
                403: f" The token may not write to {repo_id.split('/')[0]}.",
                409: " It exists already: choose another --tag." if commit else ""}.get(status, "")
        raise PsychosafeError(f"the Hub refused to {step} for {repo_id} (HTTP {status}).{hint} "
                              f"Server said: {exc.server_message or str(exc).splitlines()[0]}. "
                              + _what_was_committed(commit)) from None
    except _transport_errors() as exc:
        raise PsychosafeError(f"could not reach the Hub at {api.endpoint} to {step} ({type(exc).__name__}: {exc}). "
                              + _what_was_committed(commit) + " Check the network or --endpoint / HF_ENDPOINT.") from None
    result.url = str(repo_url) + (f"/tree/{branch}" if branch != "main" else "")
    result.commit = commit.oid
    result.tag = tag
    RunFolder(result.folder.parent).update(published={"repo_id": repo_id, "url": result.url, "commit": commit.oid,
                                                      "revision": branch, "tag": tag, "private": private})
    return result


def _what_was_committed(commit) -> str:
    return "Nothing was committed." if commit is None else f"Commit {commit.oid} is on the Hub; only this step failed."


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The connection errors of the HTTP client huggingface_hub uses (it has changed between releases)."""
    import importlib

    found = []
    for module, name in (("httpx2", "TransportError"), ("httpx", "TransportError"), ("requests", "ConnectionError")):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def publish_run(run_dir: str | Path, repo_id: str, config: PublishConfig | None = None, *, dry_run: bool = False,
            private: bool = False, revision: str | None = None, tag: str | None = None, force: bool = False,
            exclude_blocked: bool = False, token: str | None = None, endpoint: str | None = None) -> PublishResult:
    """The `publish` command: build `<run>/publish/`, then push it unless `dry_run`."""
    result = build_publish_folder(run_dir, repo_id, config or load_publish_config(), force=force,
                                  exclude_blocked=exclude_blocked)
    if dry_run:
        return result
    return push_folder(result, private=private, revision=revision, tag=tag, token=token, endpoint=endpoint)
