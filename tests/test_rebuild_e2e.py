"""End to end on the embedded model: a real distilabel pipeline, real SmolLM2, a real run folder."""

import json
import subprocess
import sys

import datasets
import pytest

from psychosafe.config import load_rebuild_config
from psychosafe.rebuild import rebuild
from psychosafe.schemas import RECORD_FEATURES, default_taxonomy

pytestmark = pytest.mark.slow

DOMAINS = default_taxonomy().domain_ids()


@pytest.fixture(scope="module")
def small_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "small.yaml"
    path.write_text(
        "name: small\nseed: 7\ntarget: 10\nbenign_fraction: 0.2\n"
        "generator: {backend: embedded, max_new_tokens: 24, batch_size: 5, seed: 7}\n"
        "curation: {on_refusal_mismatch: flag, splits: {validation_per_domain: 1, test_per_domain: 0}}\n")
    return load_rebuild_config(path)


@pytest.fixture(scope="module")
def two_runs(small_config, tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    return rebuild(small_config, base / "a", progress=False), rebuild(small_config, base / "b", progress=False)


def test_run_folder_has_every_part(two_runs):
    run, _ = two_runs
    for part in ("manifest.json", "curated/dataset_dict.json", "curated/parquet/train.parquet", "report/report.md",
                 "report/domains.png", "report/stages.png", "synthesized/dataset", "rejected/balance.jsonl"):
        assert (run.path / part).exists(), part
    manifest = json.loads((run.path / "manifest.json").read_text())
    assert manifest["models"]["generator"] == "embedded/SmolLM2-135M-Instruct"
    assert manifest["seed"] == 7 and manifest["versions"]["distilabel"] == "1.5.3"
    assert manifest["config"]["target"] == 10
    stages = manifest["stages"]
    assert stages["generate"]["counts"]["generated_now"] == 10 and stages["generate"]["seconds"] > 0
    assert stages["balance"]["counts"]["kept"] == 10
    assert stages["balance"]["counts"]["rejected"] == 55  # the 65 builtin seeds less the 10 taken


def test_curated_records_have_every_field_and_all_domains(two_runs):
    run, _ = two_runs
    ds = datasets.load_from_disk(str(run.curated))
    assert set(ds) == {"train", "validation", "test"}
    assert ds["train"].features == RECORD_FEATURES
    rows = [r for split in ds.values() for r in split]
    rejected_checks = [json.loads(l) for l in (run.rejected / "checks.jsonl").read_text().splitlines()]
    assert len(rows) + len(rejected_checks) == 10
    assert all(r["reason"].startswith("unverified contact detail") for r in rejected_checks)
    assert {r["domain"] for r in rows} == set(DOMAINS) or len(rejected_checks) > 0
    for r in rows:
        assert r["prompt"] and r["response"] and r["locale"] in ("en-US", "en-GB")
        assert r["generation"]["model"] == "embedded/SmolLM2-135M-Instruct"
        assert r["generation"]["template_version"] == "response-v1" and r["generation"]["seed"] == 7
        assert r["source"]["kind"] == "seed" and r["source"]["license"] == "Apache-2.0"
        assert r["checks"]["is_refusal"] is not None and r["checks"]["passed"] is not None
        assert (r["strategy"] is not None) == (r["label"] == "harmful")
        assert r["review"]["status"] == "pending"
    # one validation record per domain that has at least two records
    assert len(ds["validation"]) == sum(1 for d in DOMAINS if sum(r["domain"] == d for r in rows) >= 2)


def test_ids_and_selection_are_stable_across_runs(two_runs):
    a, b = two_runs
    ids = lambda run: sorted(r["id"] for r in datasets.load_from_disk(str(run.synthesized / "dataset")))  # noqa: E731
    assert ids(a) == ids(b) and len(ids(a)) == 10


def test_rerun_in_the_same_folder_resumes_without_generating(two_runs, small_config):
    run, _ = two_runs
    before = datasets.load_from_disk(str(run.synthesized / "dataset")).to_list()
    rebuild(small_config, run.path, progress=False)
    manifest = json.loads((run.path / "manifest.json").read_text())
    assert manifest["stages"]["generate"]["counts"]["generated_now"] == 0
    assert manifest["stages"]["generate"]["counts"]["resumed_from_batches"] == 10
    assert datasets.load_from_disk(str(run.synthesized / "dataset")).to_list() == before


def test_cli_rebuild_writes_the_run_folder_and_says_where(small_config, tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text("name: tiny\ntarget: 5\nbenign_fraction: 0\n"
                      "generator: {backend: embedded, max_new_tokens: 8, batch_size: 5}\n"
                      "curation: {on_refusal_mismatch: flag, splits: {validation_per_domain: 0, test_per_domain: 0}}\n")
    proc = subprocess.run([sys.executable, "-m", "psychosafe.cli", "rebuild", "--config", str(config),
                           "--run-dir", str(tmp_path / "run")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"run folder: {tmp_path / 'run'}" in proc.stderr
    assert len(datasets.load_from_disk(str(tmp_path / "run" / "curated"))["train"]) + \
        len((tmp_path / "run" / "rejected" / "checks.jsonl").read_text().splitlines()) == 5
