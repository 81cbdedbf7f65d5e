"""The push: the folder `build_publish_folder` wrote goes to the Hugging Face Hub with huggingface_hub, in one
commit, and the Hub's refusals become messages that say which step failed and what was committed."""

from __future__ import annotations

import importlib

from psychosafe.core.runs import RunFolder
from psychosafe.errors import PsychosafeError

from .folder import PublishResult


def push_folder(result: PublishResult, *, private: bool = False, revision: str | None = None,
                tag: str | None = None, token: str | None = None, endpoint: str | None = None,
                commit_message: str | None = None) -> PublishResult:
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
                                      "uploaded. Make it private in its settings on the Hub, or publish without "
                                      "--private.")
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
                              + _what_was_committed(commit)
                              + " Check the network or --endpoint / HF_ENDPOINT.") from None
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
    found = []
    for module, name in (("httpx2", "TransportError"), ("httpx", "TransportError"), ("requests", "ConnectionError")):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)
