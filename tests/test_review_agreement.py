"""Agreement metrics, aggregation rules, selection, merge, and what pull writes: no server needed (pull reads a
stand-in for the Argilla queue). Expected values are worked out by hand in the comments."""

import json

import datasets
import pytest

from psychosafe.core.runs import RunFolder
from psychosafe.curation.review import (
    Annotation,
    QueueRecord,
    ReviewConfig,
    SelectionConfig,
    aggregate,
    cohen_kappa,
    krippendorff_alpha,
    load_review_config,
    load_run_records,
    merge_record,
    pull_review,
    select_records,
)
from psychosafe.curation.review import pull as pull_module
from psychosafe.errors import InputError
from psychosafe.schemas import Checks, Record, Scores, record_id, records_to_dataset


def test_cohen_kappa_binary():
    # 9 pairs, one mismatch: p_o = 8/9; marginals T7 F2 vs T8 F1: p_e = (56 + 2) / 81 = 58/81
    a = [True] * 3 + [False] + [True] * 4 + [False]
    b = [True] * 8 + [False]
    assert cohen_kappa(a, b, categories=[False, True]) == pytest.approx(14 / 23)


def test_cohen_kappa_quadratic():
    # one pair off by one on a 1-3 scale: weight (1/2)^2; see the worked sum in the review test for larger cases
    a, b = [1, 2, 3, 3], [1, 2, 3, 2]
    observed = (0.25) / 4
    # marginals a: 1:1, 2:1, 3:2; b: 1:1, 2:2, 3:1 -> sum h_i g_j w_ij / 16
    expected = (1 * 2 * .25 + 1 * 1 * 1 + 1 * 1 * .25 + 1 * 1 * .25 + 2 * 1 * 1 + 2 * 2 * .25) / 16
    assert cohen_kappa(a, b, categories=[1, 2, 3], weights="quadratic") == pytest.approx(1 - observed / expected)


def test_kappa_undefined_when_one_category():
    assert cohen_kappa([True, True], [True, True], categories=[False, True]) is None
    assert cohen_kappa([], [], categories=[False, True]) is None


def test_krippendorff_alpha_interval_and_missing():
    # units (4,5) (2,2) (3,3) (5,4) and a single rating (skipped): D_o = 4/8, D_e = 160/56 -> 1 - 7/40
    alpha, n = krippendorff_alpha([[4, 5], [2, 2], [3, 3], [5, 4], [1]], level="interval")
    assert n == 4 and alpha == pytest.approx(33 / 40)


def test_krippendorff_alpha_nominal_three_raters():
    # perfect agreement over two categories
    alpha, n = krippendorff_alpha([["a", "a", "a"], ["b", "b"], ["a", "a"]], level="nominal")
    assert n == 3 and alpha == pytest.approx(1.0)


def test_aggregate_rules():
    assert aggregate(["accept", "accept", "reject"], "majority") == "accept"
    assert aggregate(["accept", "reject"], "majority") is None  # a tie is not a majority
    assert aggregate(["accept", "accept", "reject"], "unanimity") is None
    assert aggregate(["edit", "edit"], "unanimity") == "edit"
    assert aggregate([], "majority") is None


def _record(prompt, domain="violence", **kw):
    return Record(id=record_id(prompt, domain), prompt=prompt, response="I can't help with that.", label="harmful",
                  domain=domain, **kw)


def test_selection_rules():
    low = _record("low one", scores=Scores(refusal=True, grounding=2, references=True, relevance=5))
    good = _record("good one", scores=Scores(refusal=True, grounding=5, references=True, relevance=5))
    flagged = _record("flagged one", checks=Checks(passed=False, unverified_contacts=["555-0100"]))
    others = [_record(f"sample {i}", domain="substance") for i in range(5)]
    rows = [low, good, flagged, *others]
    assert select_records(rows, SelectionConfig(rules=["all"])) == rows
    assert [r.id for r in select_records(rows, SelectionConfig(rules=["low_scores"]))] == [low.id]
    low_or_flagged = select_records(rows, SelectionConfig(rules=["low_scores", "flagged"]))
    assert [r.id for r in low_or_flagged] == [low.id, flagged.id]
    sample = select_records(rows, SelectionConfig(rules=["sample"], sample_per_domain=2, seed=1))
    assert sum(r.domain == "substance" for r in sample) == 2 and sum(r.domain == "violence" for r in sample) == 2
    same_seed = SelectionConfig(rules=["sample"], sample_per_domain=2, seed=1)
    assert sample == select_records(list(reversed(rows)), same_seed)[::-1]


def test_merge_unanimity_and_edit_without_text():
    record = _record("merge me", scores=Scores(refusal=True, grounding=4, references=True, relevance=4))
    a = Annotation("alice", "submitted", {"decision": "accept", "grounding": 4})
    b = Annotation("bob", "submitted", {"decision": "accept", "grounding": 3})
    c = Annotation("carol", "submitted", {"decision": "reject"})
    merged, disagreements, _ = merge_record(record, [a, b, c], rule="majority", min_submitted=1)
    assert merged.review.status == "accepted" and merged.review.human_scores.grounding == 3.5
    assert {d["question"] for d in disagreements} == {"decision", "grounding"}
    merged, _, problems = merge_record(record, [a, b, c], rule="unanimity", min_submitted=1)
    assert merged.review.status == "pending" and "unanimity" in problems[0]["problem"]
    edit = Annotation("alice", "submitted", {"decision": "edit", "corrected_response": "  "})
    merged, _, problems = merge_record(record, [edit], rule="majority", min_submitted=1)
    assert merged.review.status == "pending" and merged.response == record.response
    assert "without a corrected response" in problems[0]["problem"]


def test_review_config_errors_name_the_field(write):
    path = write("review.yaml", "rule: plurality\n")
    with pytest.raises(InputError, match=r"review.yaml.*rule"):
        load_review_config(path)
    with pytest.raises(InputError, match="min_submitted"):
        load_review_config(None, min_submitted=0)


def test_queue_metadata_and_suggestions_come_from_the_record():
    from psychosafe.curation.review.settings import record_fields, record_metadata, record_suggestions

    record = _record("imported one", category="from_another_dataset", intent="curiosity", strategy="green_dot",
                     scores=Scores(refusal=False, grounding=7, references=True, relevance=3, judge_model="j"))
    meta = record_metadata(record, "test")
    assert meta["category"] == "from_another_dataset" and meta["split"] == "test"
    assert meta["judge_refusal"] == "no" and meta["judge_relevance"] == 3
    assert "judge_grounding" not in meta  # off the 1-5 scale: left out rather than refused by the server
    assert ("grounding" not in [q for q, _, _ in record_suggestions(record)])
    suggestions = record_suggestions(record)
    assert ("relevance", 3, "j") in suggestions and ("strategy", "green_dot", "pipeline") in suggestions
    assert set(record_fields(record)) == {"prompt", "response"}
    benign = Record(id=record_id("benign one", "weapon"), prompt="benign one", response="Sure: ...", label="benign",
                    domain="weapon", scores=Scores(compliance="full_compliance", judge_model="j"))
    assert record_metadata(benign, "train")["judge_compliance"] == "full_compliance"
    assert record_suggestions(benign) == [("compliance", "full_compliance", "j")]


def test_run_without_records_or_with_bad_rows_is_refused(tmp_path):
    with pytest.raises(InputError, match="no curated/ or synthesized/dataset"):
        load_run_records(RunFolder(tmp_path / "empty"))
    run = RunFolder(tmp_path / "bad")
    rows = records_to_dataset([_record("fine prompt")]).to_list()
    rows[0]["domain"] = "gardening"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows)}).save_to_disk(str(run.curated))
    with pytest.raises(InputError, match=r"curated.*domain.*unknown domain 'gardening'"):
        load_run_records(run)


class _StandInQueue:
    """What pull asks of ArgillaQueue: the dataset's min_submitted and the queued records with their answers."""

    def __init__(self, records):
        self.queued = records

    def min_submitted(self):
        return 1

    def records(self, *, with_responses):
        return self.queued


def _pulled_run(tmp_path, monkeypatch):
    records = [_record("pull me"), _record("leave me", domain="weapon")]
    run = RunFolder(tmp_path / "run")
    datasets.DatasetDict({"train": records_to_dataset(records)}).save_to_disk(str(run.curated))
    answers = [Annotation("alice", "submitted", {"decision": "reject", "refusal": "yes", "grounding": 2})]
    queue = _StandInQueue([QueueRecord(records[0].id, {}, {"domain": "violence"}, answers)])
    monkeypatch.setattr(pull_module, "ArgillaQueue", lambda config: queue)
    return run, records


def test_pull_writes_review_and_keeps_what_push_wrote(tmp_path, monkeypatch):
    run, records = _pulled_run(tmp_path, monkeypatch)
    run.review.mkdir(parents=True)
    (run.review / "push.json").write_text('{"counts": {"created": 2}}', encoding="utf-8")
    (run.review / "report.md").write_text("an older report", encoding="utf-8")

    summary = pull_review(run, ReviewConfig())
    assert summary["statuses"] == {"accepted": 0, "rejected": 1, "edited": 0, "pending": 1}
    assert sorted(p.name for p in run.review.iterdir()) == ["dataset", "disagreements.json", "push.json", "report.md",
                                                            "review.png", "summary.json"]
    assert json.loads((run.review / "push.json").read_text()) == {"counts": {"created": 2}}
    assert json.loads((run.review / "summary.json").read_text()) == json.loads(json.dumps(summary))
    assert "rejected **1**" in (run.review / "report.md").read_text()
    merged = datasets.load_from_disk(str(run.review / "dataset"))["train"]
    assert merged["id"] == [r.id for r in records]
    assert [row["review"]["status"] for row in merged] == ["rejected", "pending"]
    assert merged[0]["review"]["human_scores"]["grounding"] == 2.0
    assert not [p.name for p in run.path.iterdir() if p.name.startswith(".")]  # no staging folder left behind


def test_a_pull_that_fails_while_writing_leaves_review_as_it_was(tmp_path, monkeypatch):
    run, _ = _pulled_run(tmp_path, monkeypatch)
    run.review.mkdir(parents=True)
    (run.review / "summary.json").write_text('{"from": "the last pull"}', encoding="utf-8")

    def broken_report(*args):
        raise OSError("disk full")

    monkeypatch.setattr(pull_module, "write_review_report", broken_report)
    with pytest.raises(OSError, match="disk full"):
        pull_review(run, ReviewConfig())
    assert [p.name for p in run.review.iterdir()] == ["summary.json"]
    assert json.loads((run.review / "summary.json").read_text()) == {"from": "the last pull"}
    assert not [p.name for p in run.path.iterdir() if p.name.startswith(".")]
    assert "review_pull" not in (run.manifest().get("stages") or {})
