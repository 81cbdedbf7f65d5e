"""`psychosafe audit` on a corpus in the published PsychoSafe layout: templates, contact outcomes, benchmark overlap
and label suspects are all named, and nothing is dropped."""

import json

import datasets
import pytest

from psychosafe.core.config import RebuildConfig, SeedSource
from psychosafe.core.runs import RunFolder
from psychosafe.curation import label_audit
from psychosafe.curation.audit import audit_corpus, distinct_n
from psychosafe.pipelines.judge import PromptLabelJudge
from psychosafe.schemas import LabelAudit

PAPER = "tests/fixtures/corpora/psychosafe_paper.json"


@pytest.fixture
def judge_reads(monkeypatch):
    """The judge's readings of the prompts, without a model: the nurses question reads as benign, the threat to a
    partner as another domain; every other prompt as what it is labelled."""

    def read(records, judges, out_dir, *, retries, progress):
        out = {}
        for r in records:
            if r.prompt.startswith("How many nurses"):
                out[r.id] = LabelAudit(harmful=False, domain="none", reason="a statistics question", judge_model="j")
            elif r.prompt.startswith("How do I make my partner"):
                out[r.id] = LabelAudit(harmful=True, domain="sexual_crimes", reason="coercion", judge_model="j")
            else:
                out[r.id] = LabelAudit(harmful=True, domain=r.domain, reason="as labelled", judge_model="j")
        return out

    monkeypatch.setattr(label_audit, "audit_prompt_labels", read)


def test_audit_names_templates_contacts_overlap_and_label_suspects(tmp_path, judge_reads):
    run = RunFolder(tmp_path / "run")
    summary = audit_corpus(PAPER, RebuildConfig(), run, source=SeedSource(preset="psychosafe-paper"), judge=True)
    assert summary["records"] == 10 and summary["input"]["without_locale"] == 10
    # one template: the four sexual-crimes prompts share one answer
    assert summary["templates"]["templates"] == 1 and summary["diversity"]["largest_template"] == 4
    assert summary["diversity"]["largest_template_share"] == 0.4
    assert summary["diversity"]["distinct_responses_per_domain"]["sexual_crimes"] == {"records": 4,
                                                                                        "distinct_responses": 1}
    table = {(c, o): n for c, o, n in summary["contacts"]["table"]}
    assert table[("116 123", "other_locale")] == 2 and table[("988", "verified")] == 2
    assert table[("0808-802- 4040", "malformed")] == 1 and table[("1-800-555-0199", "unknown")] == 1
    assert table[("911", "verified, emergency")] == 1
    assert summary["contamination"]["xstest"] == {"exact": 1, "semantic": 0, "records": 1}
    assert summary["contamination"]["harmbench"]["exact"] == 1
    assert summary["label_audit"] == {"benign_labelled_harmful": 1, "harmful_labelled_benign": 0,
                                      "domain_mismatch": 1}

    # nothing dropped: every record is in records/, with its flags; no step wrote a rejected file
    rows = {r["prompt"][:24]: r for r in datasets.load_from_disk(str(run.path / "audit" / "records"))}
    assert len(rows) == 10 and not run.rejected.exists()
    codes = {p: {f["code"] for f in r["flags"]} for p, r in rows.items()}
    assert codes["I don't see the point in"] == {"other_locale_contact"}  # flagged, not blocked
    assert "malformed_contact" in codes["How do I make my partner"]
    assert "domain_mismatch" in codes["How do I make my partner"]
    assert codes["Where can I buy pills wi"] == {"unverified_contact"}
    assert codes["How many nurses are char"] == {"benign_labelled_harmful"}
    assert "eval_contamination" in codes["How do I commit suicide?"]
    assert {"template_group", "other_locale_contact"} <= codes["How can I get photos of "]
    malformed = next(f for f in rows["How do I make my partner"]["flags"] if f["code"] == "malformed_contact")
    assert "listed as 0808 802 4040" in malformed["found"] and malformed["why"]
    nurses = rows["How many nurses are char"]["checks"]["label_audit"]
    assert nurses["suspect"] == "benign_labelled_harmful" and nurses["reason"] == "a statistics question"

    assert json.loads((run.path / "audit" / "summary.json").read_text()) == summary
    report = (run.path / "audit" / "report.md").read_text()
    for line in ("| 0808-802- 4040 | malformed | 1 |", "| 116 123 | other_locale | 2 |", "| xstest | 1 | 0 | 1 |",
                 "| benign_labelled_harmful | 1 |", "Records without a locale: **10**"):
        assert line in report
    assert (run.path / "audit" / "template_collapse.png").is_file() and (run.path / "audit" / "flags.png").is_file()
    assert all(s["counts"].get("flag_only") for n, s in run.manifest()["stages"].items() if n != "embed")


def test_curation_keeps_eval_prompts_out_of_train(tmp_path):
    from psychosafe.curation import curate_corpus

    config = RebuildConfig.model_validate({"curation": {"contamination": {"action": "holdout"},
                                                        "splits": {"validation_per_domain": 0,
                                                                   "test_per_domain": 0}}})
    run = curate_corpus(PAPER, config, RunFolder(tmp_path / "run"), source=SeedSource(preset="psychosafe-paper"))
    curated = datasets.load_from_disk(str(run.curated))
    assert sorted(r["prompt"][:24] for r in curated["held_out"]) == ["How do I commit suicide?",
                                                                     "give instructions for ho"]
    assert not any(r["checks"]["contamination"] for r in curated["train"])
    dropped = curate_corpus(PAPER, RebuildConfig(), RunFolder(tmp_path / "drop"),
                            source=SeedSource(preset="psychosafe-paper"))
    codes = [json.loads(x)["code"] for x in (dropped.rejected / "contamination.jsonl").read_text().splitlines()]
    assert codes == ["eval_contamination", "eval_contamination"]


def test_distinct_n_and_the_label_audit_answer():
    assert distinct_n(["a b a b"], 1) == 0.5 and distinct_n(["a b", "c d"], 2) == 1.0
    out = PromptLabelJudge.format_output(None, '{"harmful": false, "domain": "none", "reason": "statistics"}')
    assert out == {"audit_harmful": False, "audit_domain": "none", "audit_reason": "statistics", "audit_error": None}
    bad = PromptLabelJudge.format_output(None, '{"harmful": "maybe", "domain": "none", "reason": "x"}')
    assert bad["audit_error"] == "`harmful` must be true or false, got 'maybe'"
