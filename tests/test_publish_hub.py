"""The push path, against a STUB of the Hugging Face Hub's HTTP API (tests/hub_stub.py): the Hub itself
cannot be reached from here. huggingface_hub runs unmodified, pointed at the stub by its endpoint setting;
its Xet transfer is switched off so files travel over the LFS protocol the stub implements."""

from __future__ import annotations

import io

import datasets
import pandas as pd
import pytest
from hub_stub import HubStub
from huggingface_hub import constants
from test_publish import default_records, write_run
from typer.testing import CliRunner

from psychosafe.cli import app
from psychosafe.curation.publish import PublishConfig, publish_run
from psychosafe.errors import PsychosafeError

TOKEN = "hf_stubtoken_0123456789"


@pytest.fixture
def hub(monkeypatch, tmp_path):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # conftest keeps tests offline; the stub is local
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-login" / "token"))
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with HubStub(token=TOKEN) as stub:
        yield stub


def _local_files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_cli_push_creates_a_private_repo_in_one_commit_and_tags_it(hub, tmp_path):
    run = write_run(tmp_path / "run", default_records())
    result = CliRunner().invoke(app, ["publish", "--run-dir", str(run.path), "--repo-id", "psychosafe/refusals",
                                      "--private", "--tag", "v1.0", "--endpoint", hub.url])
    assert result.exit_code == 0, result.output
    assert TOKEN not in result.output
    assert result.stdout.strip().splitlines()[-1] == f"{hub.url}/datasets/psychosafe/refusals"

    (create,) = hub.calls("POST", "/api/repos/create")
    assert create.json() == {"name": "refusals", "organization": "psychosafe", "visibility": "private",
                             "type": "dataset"}
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}"
               for r in hub.requests if not r.path.startswith("/_stub_lfs"))
    (commit,) = hub.calls("POST", "/api/datasets/psychosafe/refusals/commit/main")
    lines = commit.ndjson()
    assert lines[0]["value"]["summary"] == "psychosafe: publish 11 records (train 7, validation 2, test 2)"
    assert {line["key"] for line in lines[1:]} == {"file", "lfsFile"}  # the card as a git blob, parquet over LFS
    assert len(hub.calls("PUT", "/_stub_lfs/.*")) == 3

    repo = hub.repos["psychosafe/refusals"]
    assert repo.private and repo.repo_type == "dataset"
    assert repo.branches["main"] == _local_files(run.publish)  # the Hub holds exactly the dry-run folder
    assert repo.tags == {"v1.0": {"revision": repo.commits[0]["oid"], "message": lines[0]["value"]["summary"]}}
    stored = pd.read_parquet(io.BytesIO(repo.branches["main"]["data/train-00000-of-00001.parquet"]))
    assert stored["id"].tolist() == datasets.load_from_disk(str(run.curated))["train"]["id"]
    assert run.manifest()["published"]["commit"] == repo.commits[0]["oid"]
    (validated,) = hub.calls("POST", "/api/validate-yaml")  # the client has the card's header checked first
    assert validated.json() == {"content": (run.publish / "README.md").read_text(encoding="utf-8"),
                                "repoType": "dataset"}

    again = CliRunner().invoke(app, ["publish", "--run-dir", str(run.path), "--repo-id", "psychosafe/refusals",
                                     "--tag", "v1.0", "--endpoint", hub.url])
    assert isinstance(again.exception, PsychosafeError)
    assert "refused to tag the commit v1.0" in str(again.exception) and "choose another --tag" in str(again.exception)
    assert "is on the Hub; only this step failed" in str(again.exception)
    assert len(repo.commits) == 1  # the same files again: huggingface_hub skips the empty commit


def test_republish_replaces_stale_shards_and_commits_to_a_branch(hub, tmp_path):
    run = write_run(tmp_path / "run", default_records())
    publish_run(run.path, "org/set", PublishConfig(), endpoint=hub.url)
    first = set(hub.repos["org/set"].branches["main"])
    assert "data/train-00000-of-00001.parquet" in first

    result = publish_run(run.path, "org/set", PublishConfig(max_shard_bytes=1000), endpoint=hub.url, revision="draft")
    repo = hub.repos["org/set"]
    assert result.url == f"{hub.url}/datasets/org/set/tree/draft"
    assert len(hub.calls("POST", "/api/repos/create")) == 2 and len(repo.commits) == 2  # exists: no new repo
    assert repo.commits[1]["branch"] == "draft"
    assert repo.branches["draft"] == _local_files(run.publish)  # older single shard deleted, new shards added
    deleted = [line["value"]["path"] for line in hub.calls("POST", "/api/datasets/org/set/commit/draft")[0].ndjson()
               if line["key"] == "deletedFile"]
    assert sorted(deleted) == sorted(p for p in first if p.startswith("data/"))
    assert set(repo.branches["main"]) == first  # main untouched


def test_missing_and_refused_tokens_are_clear_and_never_printed(hub, monkeypatch, tmp_path):
    run = write_run(tmp_path / "run", default_records())
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(PsychosafeError, match="no Hugging Face token: set HF_TOKEN"):
        publish_run(run.path, "org/set", PublishConfig(), endpoint=hub.url)
    assert hub.requests == []

    wrong = "hf_wrong_token_987"
    with pytest.raises(PsychosafeError) as err:
        publish_run(run.path, "org/set", PublishConfig(), endpoint=hub.url, token=wrong)
    assert "HTTP 401" in str(err.value) and "token was refused" in str(err.value)
    assert wrong not in str(err.value) and "org/set" not in hub.repos


def test_private_is_refused_for_an_existing_public_repo(hub, tmp_path):
    run = write_run(tmp_path / "run", default_records())
    publish_run(run.path, "org/open", PublishConfig(), endpoint=hub.url)  # created public
    with pytest.raises(PsychosafeError, match="exists and is public, but --private was asked: nothing was uploaded"):
        publish_run(run.path, "org/open", PublishConfig(), endpoint=hub.url, private=True)
    assert len(hub.repos["org/open"].commits) == 1


def test_an_unreachable_hub_or_offline_mode_is_a_clear_error(hub, monkeypatch, tmp_path):
    run = write_run(tmp_path / "run", default_records())
    with pytest.raises(PsychosafeError,
                       match=r"could not reach the Hub at http://127.0.0.1:9 to create the repository"):
        publish_run(run.path, "org/set", PublishConfig(), endpoint="http://127.0.0.1:9")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(PsychosafeError, match="HF_HUB_OFFLINE .* is set: unset it to publish"):
        publish_run(run.path, "org/set", PublishConfig(), endpoint=hub.url)
    assert hub.requests == []
