"""Repair (issue 13): configs/repair.yaml on a corpus in the published PsychoSafe layout whose answers have collapsed
to one text per domain. The corpus's own prompts are the seeds (nothing synthesized), the embedded model writes a
response for each, every record keeps its provenance, and auditing the result shows the template collapse gone.
Small token budgets and no critique round keep it to a few minutes on the embedded model."""

import json

import datasets
import pytest

from psychosafe.app.rebuild import rebuild
from psychosafe.core.config import SeedSource, load_rebuild_config
from psychosafe.core.runs import RunFolder
from psychosafe.curation.audit import audit_corpus
from psychosafe.curation.inputs import import_corpus

pytestmark = pytest.mark.slow

COLLAPSED = "tests/fixtures/corpora/psychosafe_collapsed.json"  # 5 domains x 3 prompts, one answer per domain
TINY_MODEL = {"backend": "embedded", "max_new_tokens": 48, "temperature": 0.7, "batch_size": 15, "seed": 42}


def test_repair_writes_a_response_per_prompt_and_the_collapse_is_gone(tmp_path):
    seeds = [{"path": COLLAPSED, "preset": "psychosafe-paper", "defaults": {"locale": "en-US"}}]
    config = load_rebuild_config("configs/repair.yaml", target=15, seeds=seeds, generator=TINY_MODEL,
                                 judges=[TINY_MODEL | {"max_new_tokens": 32, "temperature": 0.0}],
                                 **{"critique.max_rounds": 0})
    source = SeedSource(preset="psychosafe-paper")
    before = audit_corpus(COLLAPSED, config, RunFolder(tmp_path / "before"), source=source)
    assert before["records"] == 15
    assert before["templates"]["templates"] == 5 and before["templates"]["collapse_rate"] == 1.0
    assert all(d == {"records": 3, "distinct_responses": 1}
               for d in before["diversity"]["distinct_responses_per_domain"].values())

    run = rebuild(config, tmp_path / "repair", progress=False)
    stages = run.manifest()["stages"]
    assert "synthesis" not in stages and stages["generate"]["counts"]["in"] == 15  # the corpus's prompts only

    after = audit_corpus(run.path, config, RunFolder(tmp_path / "after"))
    assert after["records"] == 15
    assert after["templates"]["templates"] == 0 and after["templates"]["collapse_rate"] == 0.0
    assert after["templates"]["records_in_templates"] == 0
    assert all(d == {"records": 3, "distinct_responses": 3}
               for d in after["diversity"]["distinct_responses_per_domain"].values())
    assert after["diversity"]["largest_template_share"] == 0.0

    # every record is one of the corpus's prompts, with a new response and the provenance it came with
    original = {r.prompt: r for r in import_corpus(COLLAPSED, source).records}
    repaired = datasets.load_from_disk(str(run.synthesized / "dataset")).to_list()
    assert sorted(r["prompt"] for r in repaired) == sorted(original)
    for r in repaired:
        was = original[r["prompt"]]
        assert r["response"] and r["response"] != was.response
        assert (r["domain"], r["source"]["dataset"], r["source"]["corpus"], r["source"]["author"]) == (
            was.domain, was.source.dataset, "aisilab/psychological-safety", "psychosafe-tests")
    assert json.loads((tmp_path / "after" / "audit" / "summary.json").read_text()) == after
