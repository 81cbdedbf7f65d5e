"""The judge gated by agreement: planted human answers pulled (through a stand-in for the Argilla queues) make
the judge trusted on a criterion people agree with it on and untrusted on one they do not; curation's score filter
then filters on the first only, the second's records go to the review queue, publish holds them, and the card
prints kappa per criterion. No server needed."""

import json
from types import SimpleNamespace

import datasets
import pytest

from psychosafe.core.runs import RunFolder
from psychosafe.curation.checks import check_record
from psychosafe.curation.publish import PublishBlocked, PublishConfig, build_publish_folder
from psychosafe.curation.registry import ScoreFilter
from psychosafe.curation.review import (
    Annotation,
    QueueRecord,
    ReviewConfig,
    SelectionConfig,
    pull_review,
    select_records,
)
from psychosafe.curation.review import pull as pull_module
from psychosafe.curation.scores import decide_trust, filter_scores, read_judge_trust
from psychosafe.curation.usable import blocking_reasons
from psychosafe.errors import InputError
from psychosafe.schemas import Record, Scores, record_id, records_to_dataset
from psychosafe.schemas.records import Review

REFUSAL = ("I'm sorry, but I can't help with that. It sounds like a lot is weighing on you right now. "
           "You can call or text 988 any time.")
N = 12


def _record(i: int, **scores) -> Record:
    prompt = f"planted prompt number {i}"
    judged = {"refusal": True, "grounding": 4, "references": True, "relevance": 4, "judge_model": "judge-x"} | scores
    return check_record(Record(id=record_id(prompt, "violence"), prompt=prompt, response=REFUSAL, label="harmful",
                               domain="violence", scores=Scores(**judged)))


def _planted():
    """12 records. The judge says refusal yes on 8 and no on 4, and the annotator agrees on every one (kappa 1).
    It gives grounding 5 to the even records and 2 to the odd ones; the annotator gives exactly the opposite
    (quadratic kappa -1). References and relevance: the annotator agrees."""
    records, queued = [], []
    for i in range(N):
        refusal = i % 3 != 0
        grounding = 5 if i % 2 == 0 else 2
        record = _record(i, refusal=refusal, grounding=grounding, references=i % 4 != 0, relevance=3 + i % 3)
        records.append(record)
        answers = {"decision": "accept", "refusal": "Yes" if refusal else "no", "grounding": 7 - grounding,
                   "references": "yes" if i % 4 != 0 else "No", "relevance": 3 + i % 3}
        queued.append(QueueRecord(record.id, {}, {"domain": "violence"}, [Annotation("alice", "submitted", answers)]))
    return records, queued


class _StandInQueue:
    url = "http://stand-in"

    def __init__(self, queued):
        self.queued = queued

    def require_manager(self):
        pass

    def check_unchanged(self, pushed, build):
        pass

    def min_submitted(self):
        return 1

    def records(self, *, with_responses):
        return self.queued


def _pull(tmp_path, monkeypatch, **trust) -> tuple[RunFolder, list[Record], dict]:
    records, queued = _planted()
    run = RunFolder(tmp_path / "run")
    datasets.DatasetDict({"train": records_to_dataset(records)}).save_to_disk(str(run.curated))
    monkeypatch.setattr(pull_module, "ArgillaQueue", lambda config: _StandInQueue(queued))
    summary = pull_review(run, ReviewConfig(trust={"min_kappa": 0.6, "min_reviewed": 10} | trust))
    return run, records, summary


def test_pull_stores_kappa_per_criterion_and_which_are_trusted(tmp_path, monkeypatch):
    run, _, summary = _pull(tmp_path, monkeypatch)
    trust = read_judge_trust(run)
    assert trust.reviewed == N and trust.min_kappa == 0.6 and trust.judge_models == ["judge-x"]
    assert trust.criteria["refusal"].kappa == pytest.approx(1.0) and trust.criteria["refusal"].trusted
    assert trust.criteria["grounding"].kappa == pytest.approx(-1.0) and not trust.criteria["grounding"].trusted
    assert trust.criteria["grounding"].metric == "cohen_kappa_quadratic" and trust.criteria["grounding"].pairs == N
    assert "-1.00 < 0.6" in trust.criteria["grounding"].why
    assert trust.criteria["compliance"].kappa is None and not trust.criteria["compliance"].trusted  # no benign
    assert summary["judge_trust"] == {"reviewed": N, "trusted": ["refusal", "references", "relevance"],
                                      "untrusted": ["grounding", "compliance"]}
    assert run.manifest()["stages"]["review_pull"]["counts"]["trusted_criteria"] == 3
    report = (run.review / "report.md").read_text()
    assert "## Where the judge is trusted" in report and "Trusted: **refusal, references, relevance**" in report
    assert "| grounding | -1.000 | cohen_kappa_quadratic | 12 | no |" in report
    agreement = json.loads((run.review / "agreement.json").read_text())
    assert agreement["grounding"]["kappas"]["linear"]["value"] == pytest.approx(-1.0)
    assert agreement["grounding"]["annotators"]["alice"]["items"] == N


def test_a_criterion_with_low_kappa_stops_filtering_and_its_records_are_queued(tmp_path, monkeypatch):
    run, _, _ = _pull(tmp_path, monkeypatch)
    trust = read_judge_trust(run)
    refused_not = _record(100, refusal=False)  # falls short on refusal: trusted, so still dropped
    weak_grounding = _record(101, grounding=2)  # falls short on grounding only: untrusted, so kept for a person
    good = _record(102)
    new_batch = [refused_not, weak_grounding, good]

    before = filter_scores(new_batch)  # no verdict: the judge filters on every criterion
    assert [r.id for r in before.kept] == [good.id]
    after = filter_scores(new_batch, trust=trust)
    assert [r.id for r in after.kept] == [weak_grounding.id, good.id]
    assert [r.id for r in after.rejected] == [refused_not.id] and "refusal is no" in after.rejected[0].reason
    assert after.notes["judge_trust"] == {"untrusted": ["grounding", "compliance"], "left_for_review": 1}

    # curation's own step reads the run's verdict: a re-curation of the reviewed run filters the same way
    step = ScoreFilter().run(new_batch, SimpleNamespace(run=run))
    assert [r.id for r in step.kept] == [weak_grounding.id, good.id] and step.notes["judge_trust"]["left_for_review"]

    # queued whatever the selection rules say; the record trusted criteria decided is not
    picked = select_records(new_batch, SelectionConfig(rules=["flagged"]), trust=trust)
    assert [r.id for r in picked] == [weak_grounding.id]
    # publish holds it until a person has looked, even where review is not required
    assert blocking_reasons(weak_grounding, trust=trust) == ["judge_untrusted"]
    assert blocking_reasons(weak_grounding) == [] and blocking_reasons(good, trust=trust) == []
    reviewed = weak_grounding.model_copy(update={"review": Review(status="accepted", annotator_count=1)})
    assert blocking_reasons(reviewed, trust=trust) == []


def test_no_criterion_is_trusted_before_enough_records_are_reviewed(tmp_path, monkeypatch):
    run, _, summary = _pull(tmp_path, monkeypatch, min_reviewed=50)
    trust = read_judge_trust(run)
    assert summary["judge_trust"]["trusted"] == [] and trust.criteria["refusal"].kappa == pytest.approx(1.0)
    assert "only 12 reviewed record(s); 50 needed" in trust.criteria["refusal"].why
    assert filter_scores([_record(100, refusal=False)], trust=trust).rejected == []


def test_the_card_prints_kappa_per_criterion_and_which_were_trusted(tmp_path, monkeypatch):
    run, _, _ = _pull(tmp_path, monkeypatch)
    result = build_publish_folder(run.path, "org/planted", PublishConfig(require_review=False))
    card = (result.folder / "README.md").read_text()
    assert "Trusted: refusal, references, relevance." in card and "Not trusted: grounding, compliance" in card
    assert "| grounding | -1.000 | cohen_kappa_quadratic | 12 | no |" in card
    assert "| refusal | 1.000 | cohen_kappa | 12 | yes |" in card


def test_publish_refuses_unreviewed_records_an_untrusted_criterion_would_have_decided(tmp_path, monkeypatch):
    run, records, _ = _pull(tmp_path, monkeypatch)
    # curated again with one more record the judge holds back on grounding, not yet reviewed
    weak = _record(101, grounding=2)
    reviewed = datasets.load_from_disk(str(run.review / "dataset"))["train"].to_list()
    merged = [Record.model_validate(row) for row in reviewed] + [weak]
    datasets.DatasetDict({"train": records_to_dataset(records + [weak])}).save_to_disk(str(run.curated))
    datasets.DatasetDict({"train": records_to_dataset(merged)}).save_to_disk(str(run.review / "dataset"))
    with pytest.raises(PublishBlocked, match="held back by the judge on a criterion it is not trusted on"):
        build_publish_folder(run.path, "org/planted", PublishConfig(require_review=False))


def test_decide_trust_policy_and_a_bad_verdict_file(tmp_path):
    trust = decide_trust({"refusal": ("cohen_kappa", 0.6, 40), "relevance": ("cohen_kappa_quadratic", 0.59, 40),
                          "references": ("cohen_kappa", None, 0)}, reviewed=40, min_kappa=0.6, min_reviewed=30)
    assert [c for c in trust.criteria if trust.trusts(c)] == ["refusal"]  # the threshold itself is enough
    assert not trust.trusts("grounding")  # a criterion the verdict does not know is not trusted
    run = RunFolder(tmp_path / "run")
    run.review.mkdir(parents=True)
    (run.review / "judge_trust.json").write_text('{"min_kappa": "high"}', encoding="utf-8")
    with pytest.raises(InputError, match=r"judge_trust.json.*min_kappa"):
        read_judge_trust(run)
