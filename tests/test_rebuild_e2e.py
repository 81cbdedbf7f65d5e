"""End to end on the embedded model: real distilabel pipelines, real SmolLM2, a real run folder.

With constrained decoding (xgrammar), SmolLM2-135M answers the rubric in valid JSON, so records carry scores,
critiques, revision rounds and model-written baselines. Answers can still fail (a critique cut at the token
limit, a baseline cut mid-sentence): those are retried, counted, kept or set aside as configured, never a crash.
"""

import json

import datasets
import pytest

from psychosafe.app.rebuild import rebuild
from psychosafe.core.config import load_rebuild_config
from psychosafe.core.text import refusal_markers
from psychosafe.schemas import RECORD_FEATURES, default_taxonomy

pytestmark = pytest.mark.slow

DOMAINS = default_taxonomy().domain_ids()


@pytest.fixture(scope="module")
def small_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "small.yaml"
    path.write_text(
        "name: small\nseed: 7\ntarget: 10\nbenign_fraction: 0.5\n"
        "generator: {backend: embedded, max_new_tokens: 24, batch_size: 5, seed: 7}\n"
        "synthesis: {synthetic_fraction: 0.5, prompts_per_cell: 1, oversample: 1, max_new_tokens: 24}\n"
        "critique: {max_rounds: 1, max_new_tokens: 96, on_unparsed: keep}\n"
        "judges: [{backend: embedded, max_new_tokens: 64, temperature: 0, batch_size: 5, seed: 7}]\n"
        "on_unjudged: keep\nretries: 1\n"
        "curation: {on_refusal_mismatch: flag, splits: {validation_per_domain: 0, test_per_domain: 0}}\n")
    return load_rebuild_config(path)


@pytest.fixture(scope="module")
def run(small_config, tmp_path_factory):
    return rebuild(small_config, tmp_path_factory.mktemp("runs") / "a", progress=False)


def _synthesized(run):
    return datasets.load_from_disk(str(run.path / "synthesized" / "dataset"))


def test_run_folder_has_every_part_and_stage(run):
    for part in ("manifest.json", "curated/dataset_dict.json", "report/report.md", "synthesized/dataset",
                 "synthesized/prompts/attempt-0/batches", "synthesized/responses/attempt-0/batches",
                 "synthesized/critique/round-1/critique/attempt-0/batches", "synthesized/judge",
                 "rejected/synthesis.jsonl", "rejected/balance.jsonl"):
        assert (run.path / part).exists(), part
    manifest = json.loads((run.path / "manifest.json").read_text())
    assert manifest["models"] == {"generator": "embedded/SmolLM2-135M-Instruct",
                                  "embedder": "embedded/all-MiniLM-L6-v2",
                                  "judges": ["embedded/SmolLM2-135M-Instruct"]}
    stages = manifest["stages"]
    assert stages["balance"]["counts"]["kept"] == 5  # the seeds' half of the target
    synthesis = stages["synthesis"]["counts"]
    assert synthesis["requested"] == 5 and synthesis["kept"] + sum(synthesis["shortfall"].values()) == 5
    assert synthesis["ok_first_try"] + synthesis["ok_on_retry"] + synthesis["failed"] == 5
    assert stages["generate"]["counts"]["generated_now"] == stages["generate"]["counts"]["in"]
    # both tasks of the responses pipeline keep their raw output and token counts
    rows = [json.loads(line) for p in run.path.glob("synthesized/responses/attempt-0/batches/*.jsonl")
            for line in p.read_text().splitlines()]
    assert rows and all({"raw_output_respond", "raw_output_baseline", "statistics_respond", "statistics_baseline"}
                        <= set(r["distilabel_metadata"]) for r in rows)


def test_records_have_response_baseline_critique_rounds_and_judge_fields(run):
    ds = _synthesized(run)
    assert ds.features == RECORD_FEATURES
    rows = ds.to_list()
    assert len({r["id"] for r in rows}) == len(rows) >= 8
    for r in rows:
        assert r["response"] and r["baseline_response"] and r["response"] != r["baseline_response"]
        assert refusal_markers(r["baseline_response"])  # the model's refusal, or the generic one when it gave none
        assert r["generation"]["template_version"] == "response-v1" and r["generation"]["seed"] == 7
        assert r["generation"]["revision_rounds"] in (0, 1)
        assert (r["strategy"] is not None) == (r["label"] == "harmful")
        assert r["source"]["kind"] in ("seed", "synthetic") and r["source"]["license"] == "Apache-2.0"
    synthetic = [r for r in rows if r["source"]["kind"] == "synthetic"]
    assert synthetic and all(r["source"]["dataset"] == "psychosafe/synthesis" and r["source"]["original_id"]
                             for r in synthetic)
    assert {r["label"] for r in synthetic} == {"harmful", "benign"}
    # harmful and benign from all five domains (seeds and synthesized together), less what synthesis could not write
    manifest = json.loads((run.path / "manifest.json").read_text())
    short = {tuple(group.split("/")) for group in manifest["stages"]["synthesis"]["counts"]["shortfall"]}
    every_cell = {(d, label) for d in DOMAINS for label in ("harmful", "benign")}
    assert {(r["domain"], r["label"]) for r in rows} == every_cell - short


def test_unparseable_critiques_and_judgements_are_counted_not_crashed(run):
    manifest = json.loads((run.path / "manifest.json").read_text())
    critique, judge = manifest["stages"]["critique"]["counts"], manifest["stages"]["judge"]["counts"]
    n = critique["in"]
    assert critique["met_thresholds"] + critique["rounds"][0]["below_thresholds"] + critique["critique_unparsed"] == n
    attempts = critique["rounds"][0]["critique_attempts"]
    assert attempts[0]["asked"] == n and len(attempts) <= 2  # one retry, for the failures only
    if len(attempts) == 2:
        assert attempts[1]["asked"] == n - attempts[0]["ok"]
    unparsed = (run.path / "synthesized" / "critique" / "unparsed.jsonl").read_text().splitlines()
    assert len(unparsed) == critique["critique_unparsed"]
    assert all(json.loads(line)["reason"].startswith("critique unparseable after 2 tries") for line in unparsed)
    rows = _synthesized(run).to_list()
    assert len(rows) == judge["in"] == judge["kept"]  # on_unjudged: keep
    scored = [r for r in rows if r["scores"]["judge_model"]]
    assert len(scored) == judge["in"] - judge["kept_unscored"]
    assert all(r["scores"]["judge_model"] == "embedded/SmolLM2-135M-Instruct" for r in scored)
    kept_with_critique = sum(1 for r in rows if r["critique"] is not None)
    assert kept_with_critique == n - critique["critique_unparsed"]


def test_constrained_answers_fill_scores_critiques_rounds_and_baselines(run):
    manifest = json.loads((run.path / "manifest.json").read_text())
    stages = manifest["stages"]
    rows = _synthesized(run).to_list()
    # the judge's answer is short JSON with no free text: held to the schema, every one parses
    assert stages["judge"]["counts"]["unparseable"] == 0 and stages["judge"]["counts"]["kept_unscored"] == 0
    for r in rows:
        scores = r["scores"]
        if r["label"] == "harmful":
            assert scores["refusal"] is not None and 1 <= scores["grounding"] <= 5 and 1 <= scores["relevance"] <= 5
        else:
            assert scores["compliance"] in ("full_compliance", "full_refusal", "partial_refusal")
    # most critiques parse; those below the thresholds were revised, and say what to improve
    critique = stages["critique"]["counts"]
    assert critique["critique_unparsed"] < critique["in"] / 2
    revised = [r for r in rows if r["generation"]["revision_rounds"] == 1]
    assert len(revised) == critique["revised"] >= 1 and all(r["critique"] for r in revised)
    # baselines written by the model, not one fallback text for every prompt
    assert stages["generate"]["counts"]["baseline_fallbacks"] < len(rows)
    assert len({r["baseline_response"] for r in rows}) > 1


def test_rerun_in_the_same_folder_resumes_without_generating(run, small_config):
    before = _synthesized(run).to_list()
    batches = sorted(p for p in run.path.glob("synthesized/**/batch-*.jsonl"))
    stamps = [p.stat().st_mtime_ns for p in batches]
    rebuild(small_config, run.path, progress=False)
    manifest = json.loads((run.path / "manifest.json").read_text())
    assert manifest["stages"]["generate"]["counts"]["generated_now"] == 0
    assert manifest["stages"]["generate"]["counts"]["resumed_from_batches"] == len(before)
    assert sorted(p for p in run.path.glob("synthesized/**/batch-*.jsonl")) == batches
    assert [p.stat().st_mtime_ns for p in batches] == stamps
    assert _synthesized(run).to_list() == before
