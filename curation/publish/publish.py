"""The `publish` command's one library call: build the repository folder, then push it unless it is a dry run."""

from __future__ import annotations

from pathlib import Path

from .config import PublishConfig, load_publish_config
from .folder import PublishResult, build_publish_folder
from .hub import push_folder


def publish_run(run_dir: str | Path, repo_id: str, config: PublishConfig | None = None, *, dry_run: bool = False,
                private: bool = False, revision: str | None = None, tag: str | None = None, force: bool = False,
                exclude_blocked: bool = False, token: str | None = None, endpoint: str | None = None) -> PublishResult:
    """Build `<run>/publish/`, then push it unless `dry_run`."""
    result = build_publish_folder(run_dir, repo_id, config or load_publish_config(), force=force,
                                  exclude_blocked=exclude_blocked)
    if dry_run:
        return result
    return push_folder(result, private=private, revision=revision, tag=tag, token=token, endpoint=endpoint)
