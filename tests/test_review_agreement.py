"""Agreement metrics (against scikit-learn and published reference values), aggregation rules, selection, merge,
the queues' settings and findings, and what pull writes: no server needed (pull reads a stand-in for the Argilla
queues). Expected values are worked out by hand in the comments."""

import json
import math
from unittest import mock

import datasets
import pytest
from sklearn.metrics import cohen_kappa_score

from psychosafe.core.runs import RunFolder
from psychosafe.curation.review import (
    Annotation,
    Finding,
    QueueRecord,
    ReviewConfig,
    SelectionConfig,
    aggregate,
    alpha_agreement,
    build_settings,
    cohen_kappa,
    kappa_agreement,
    krippendorff_alpha,
    load_review_config,
    load_run_records,
    merge_record,
    normalize_label,
    per_annotator,
    pull_review,
    record_findings,
    select_records,
)
from psychosafe.curation.review import pull as pull_module
from psychosafe.errors import InputError, PsychosafeError
from psychosafe.schemas import Checks, Record, Scores, default_rubric, record_id, records_to_dataset


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


def test_labels_read_case_insensitively_and_missing_is_not_a_category():
    assert [normalize_label(v) for v in ("Yes", " yes ", "YES", True, "No", "false")] == [True] * 4 + [False] * 2
    assert [normalize_label(v) for v in (None, "", "  ", math.nan)] == [None] * 4
    assert normalize_label(4.0) == 4 and normalize_label("Full_Compliance") == "full_compliance"
    a = ["Yes", "no", "yes", None, "NO", "yes"]
    b = ["yes", "No", None, "yes", "no", "no"]
    agreement = kappa_agreement(a, b, categories=[False, True])
    # pairs 3 and 4 have a missing answer: dropped and counted; the rest are T/T F/F F/F T/F
    assert agreement.n == 4 and agreement.missing == 2 and agreement.exact == pytest.approx(3 / 4)
    assert agreement.value == pytest.approx(cohen_kappa_score([1, 0, 0, 1], [1, 0, 0, 0]))
    assert agreement.value == pytest.approx(0.5)  # p_o 3/4, p_e (2*1 + 2*3)/16 = 1/2


# hand-made ratings of 16 items on a 1-5 scale, two raters, every category used
RATER_A = [1, 2, 3, 4, 5, 5, 4, 3, 2, 1, 3, 4, 2, 5, 1, 3]
RATER_B = [1, 3, 3, 5, 4, 5, 4, 2, 2, 2, 4, 4, 1, 5, 2, 3]


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_weighted_kappa_equals_scikit_learn(weights):
    ours = cohen_kappa(RATER_A, RATER_B, categories=[1, 2, 3, 4, 5], weights=weights)
    assert ours == pytest.approx(cohen_kappa_score(RATER_A, RATER_B, labels=[1, 2, 3, 4, 5], weights=weights))
    # the same ratings as a CSV gives them (text, floats), with two missing: dropped pairwise and counted
    text_a = [f" {v} " for v in RATER_A] + [None, "3"]
    text_b = [float(v) for v in RATER_B] + [4.0, math.nan]
    kept = kappa_agreement(text_a, text_b, categories=[1, 2, 3, 4, 5], weights=weights)
    assert kept.value == pytest.approx(ours) and kept.n == 16 and kept.missing == 2
    assert kept.metric == "cohen_kappa" + (f"_{weights}" if weights else "")


def test_kappa_on_classes_equals_scikit_learn():
    a = ["full_compliance", "full_refusal", "partial_refusal", "full_compliance", "full_compliance", "full_refusal",
         "partial_refusal", "full_compliance"]
    b = ["Full_Compliance", "full_refusal", "full_compliance", "full_compliance", "partial_refusal", "full_refusal",
         "partial_refusal", "full_refusal"]
    expected = cohen_kappa_score(a, [v.lower() for v in b])
    assert cohen_kappa(a, b) == pytest.approx(expected)


def test_kappa_refuses_unknown_categories():
    with pytest.raises(ValueError, match=r"ratings \['7'\] are not among the categories"):
        cohen_kappa([1, 7], [1, 2], categories=[1, 2, 3, 4, 5])


# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 observers, 12 units, 7 ratings missing.
# Published: nominal 0.743, ordinal 0.815, interval 0.849.
KRIPPENDORFF_UNITS = [[1, 1, None, 1], [2, 2, 3, 2], [3, 3, 3, 3], [3, 3, 3, 3], [2, 2, 2, 2], [1, 2, 3, 4],
                      [4, 4, 4, 4], [1, 1, 2, 1], [2, 2, 2, 2], [None, 5, 5, 5], [None, None, 1, 1],
                      [None, None, 3, None]]


@pytest.mark.parametrize("level,published", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_krippendorff_alpha_reference_values(level, published):
    agreement = alpha_agreement(KRIPPENDORFF_UNITS, level=level)
    assert agreement.value == pytest.approx(published, abs=5e-4)
    assert agreement.n == 11 and agreement.missing == 7  # the last unit has one rating: not pairable
    assert agreement.metric == f"krippendorff_alpha_{level}"


def test_per_annotator_agreement_with_majority_and_judge():
    ratings = {"i1": {"a": "yes", "b": "yes", "c": "no"}, "i2": {"a": "no", "b": "no", "c": "no"},
               "i3": {"a": "yes", "b": "no", "c": None}, "i4": {"a": "Yes", "b": "yes", "c": "YES"}}
    judge = {"i1": True, "i2": False, "i3": True, "i4": False}
    got = per_annotator(ratings, judge, categories=[False, True])
    assert [got[u].items for u in "abc"] == [4, 4, 3]
    # a vs the others' majority: i1 is a tie (missing); (F,F) (T,F) (T,T): p_o 2/3, p_e 4/9 -> kappa 0.4
    assert got["a"].with_majority.n == 3 and got["a"].with_majority.missing == 1
    assert got["a"].with_majority.value == pytest.approx(0.4) and got["a"].with_majority.exact == pytest.approx(2 / 3)
    # a vs the judge: TFTT against TFTF: p_o 3/4, p_e (1*2 + 3*2)/16 -> kappa 0.5
    assert got["a"].with_judge.value == pytest.approx(0.5) and got["a"].with_judge.n == 4
    # c skipped i3: against the majority (T, F, T) it answered (F, F, T): kappa 0.4 again
    assert got["c"].with_majority.value == pytest.approx(0.4) and got["c"].with_majority.n == 3


def test_aggregate_rules():
    assert aggregate(["accept", "accept", "reject"], "majority") == "accept"
    assert aggregate(["accept", "reject"], "majority") is None  # a tie is not a majority
    assert aggregate(["accept", "accept", "reject"], "unanimity") is None
    assert aggregate(["edit", "edit"], "unanimity") == "edit"
    assert aggregate([], "majority") is None


def _record(prompt, domain="violence", response="I can't help with that.", **kw):
    return Record(id=record_id(prompt, domain), prompt=prompt, response=response, label="harmful", domain=domain, **kw)


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
    findings = record_findings(record)
    meta = record_metadata(record, "test", findings)
    assert meta["category"] == "from_another_dataset" and meta["split"] == "test"
    assert meta["judge_refusal"] == "no" and meta["judge_relevance"] == 3
    assert "judge_grounding" not in meta  # off the 1-5 scale: left out rather than refused by the server
    assert ("grounding" not in [q for q, _, _ in record_suggestions(record)])
    suggestions = record_suggestions(record)
    assert ("relevance", 3, "j") in suggestions and ("strategy", "green_dot", "pipeline") in suggestions
    assert set(record_fields(record, findings)) == {"prompt", "response", "checks"}
    benign = Record(id=record_id("benign one", "weapon"), prompt="benign one", response="Sure: ...", label="benign",
                    domain="weapon", strategy="green_dot", scores=Scores(compliance="full_compliance", judge_model="j"))
    assert record_metadata(benign, "train", record_findings(benign))["judge_compliance"] == "full_compliance"
    assert record_suggestions(benign) == [("compliance", "full_compliance", "j")]  # no strategy question there


def test_findings_say_what_was_found_and_why():
    flagged = _record("a flagged one", response="I can't help with that. Call 555-0100 or 988.",
                      checks=Checks(passed=False, is_refusal=True, refusal_markers=["i can't help"],
                                    verified_resources=["us_988_lifeline"], unverified_contacts=["555-0100"],
                                    template_of="abc123"))
    audit = Finding("label_suspect", "The prompt reads as benign.", "Check the label before rating.")
    findings = record_findings(flagged, [audit])
    assert [f.code for f in findings] == ["unverified_contact", "template_group", "label_suspect",
                                          "verified_resources"]
    from psychosafe.curation.review.settings import record_fields, record_metadata

    text = record_fields(flagged, findings)["checks"]
    assert "`555-0100`" in text and "worst failure" in text and "988 Suicide & Crisis Lifeline" in text
    assert "The prompt reads as benign." in text and "Every rule-based check passed" not in text
    assert record_metadata(flagged, "train", findings)["flags"] == ["label_suspect", "template_group",
                                                                   "unverified_contact"]
    # a record curation never checked is checked for the annotator; a benign prompt refused is a flag
    refused = Record(id=record_id("safe question", "substance"), prompt="safe question", label="benign",
                     domain="substance", response="I'm sorry, but I can't help with that.")
    assert [f.code for f in record_findings(refused)] == ["benign_refused"]
    clean = _record("a clean one", checks=Checks(passed=True, is_refusal=True, refusal_markers=["i can't help"]))
    assert record_fields(clean, record_findings(clean))["checks"] == "Every rule-based check passed."
    # the flagged rule queues records with a finding, including another source's
    rows = [flagged, clean]
    assert select_records(rows, SelectionConfig(rules=["flagged"])) == [flagged]
    assert select_records(rows, SelectionConfig(rules=["flagged"]),
                          findings={clean.id: [audit], flagged.id: record_findings(flagged)}) == rows


def test_each_label_gets_the_questions_that_fit_it_and_guidelines_from_the_rubric(monkeypatch):
    import argilla as rg

    # the SDK hands settings made without a client its default one (which would connect); they never use it here
    monkeypatch.setattr(rg.Argilla, "_default_client", mock.MagicMock())
    rubric = default_rubric()
    harmful = build_settings(ReviewConfig(), 8, "harmful")
    benign = build_settings(ReviewConfig(), 8, "benign")
    assert [f.name for f in harmful.fields] == ["conversation", "prompt", "response", "checks", "critique",
                                                "baseline_response"]
    assert [q.name for q in harmful.questions] == ["refusal", "grounding", "references", "relevance", "risk_noticed",
                                                   "consistency", "continuity", "strategy", "decision",
                                                   "corrected_response"]
    assert [q.name for q in benign.questions] == ["compliance", "decision", "corrected_response"]
    assert all(harmful.questions[c.id].required for c in rubric.criteria) and benign.questions["compliance"].required
    # the conversation criteria rate a conversation only: the harmful queue's single prompts leave them empty
    assert not any(harmful.questions[c.id].required for c in rubric.conversation)
    assert all(c.question in harmful.guidelines for c in rubric.conversation)
    for c in rubric.criteria:
        assert c.question in harmful.guidelines and all(anchor in harmful.guidelines for anchor in c.anchors.values())
        assert c.question not in benign.guidelines
    assert all(o.description in benign.guidelines for o in rubric.benign.options)
    assert "Check findings" in harmful.guidelines and "Check findings" in benign.guidelines


def test_merge_reads_answers_case_insensitively_and_merges_benign_compliance():
    record = _record("merge me too", scores=Scores(refusal=True, grounding=4, references=True, relevance=4))
    a = Annotation("alice", "submitted", {"decision": "Accept", "refusal": "Yes", "references": "no"})
    b = Annotation("bob", "submitted", {"decision": "accept", "refusal": "yes", "references": None})
    merged, disagreements, _ = merge_record(record, [a, b], rule="unanimity", min_submitted=2)
    assert merged.review.status == "accepted" and merged.review.human_scores.refusal is True
    assert merged.review.human_scores.references is False  # bob's missing answer is not a vote
    assert disagreements == []
    benign = Record(id=record_id("a safe one", "weapon"), prompt="a safe one", response="Sure, here is how.",
                    label="benign", domain="weapon", scores=Scores(compliance="full_compliance"))
    answers = [Annotation("alice", "submitted", {"decision": "reject", "compliance": "Full_Refusal"}),
               Annotation("bob", "submitted", {"decision": "reject", "compliance": "full_refusal"}),
               Annotation("carol", "submitted", {"decision": "accept", "compliance": "partial_refusal"})]
    merged, disagreements, _ = merge_record(benign, answers, rule="majority", min_submitted=1)
    assert merged.review.human_scores.compliance == "full_refusal" and merged.review.status == "rejected"
    assert {d["question"] for d in disagreements} == {"compliance", "decision"}
    assert merged.review.human_scores.refusal is None


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
    """What pull asks of ArgillaQueue: the key's rights, that the queues are the ones pushed, the queues'
    min_submitted and the queued records with their answers."""

    url = "http://stand-in"

    def __init__(self, records, *, refuse=None):
        self.queued, self.refuse = records, refuse

    def require_manager(self):
        pass

    def check_unchanged(self, pushed, build):
        if self.refuse:
            raise PsychosafeError(self.refuse)

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
    plots = [f"agreement-{c}.png" for c in ("compliance", "grounding", "references", "refusal", "relevance")]
    assert sorted(p.name for p in run.review.iterdir()) == [*plots, "agreement.json", "dataset", "disagreements.json",
                                                            "judge_trust.json", "push.json", "report.md",
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


def test_a_pull_refused_by_the_server_checks_writes_nothing(tmp_path, monkeypatch):
    run, records = _pulled_run(tmp_path, monkeypatch)
    refusing = _StandInQueue([], refuse="dataset 'psychosafe-review-harmful' was deleted and created again")
    monkeypatch.setattr(pull_module, "ArgillaQueue", lambda config: refusing)
    with pytest.raises(PsychosafeError, match="deleted and created again"):
        pull_review(run, ReviewConfig())
    assert not run.review.exists() and "review_pull" not in (run.manifest().get("stages") or {})


# -- correlation and the judge-human table's row (shared with eval's agreement table) ---------------------------

def test_pearson_and_spearman_equal_scipy_with_labels_normalised_and_missing_dropped():
    from scipy.stats import pearsonr, spearmanr

    from psychosafe.curation.review.agreement import average_ranks, pearson, spearman

    # RATER_A/B have ties at every rank: Spearman's average ranks matter
    assert pearson(RATER_A, RATER_B) == pytest.approx(pearsonr(RATER_A, RATER_B)[0])
    assert spearman(RATER_A, RATER_B) == pytest.approx(spearmanr(RATER_A, RATER_B)[0])
    assert average_ranks([3, 1, 3, 2]) == [3.5, 1.0, 3.5, 2.0]
    # as a table gives them: text, "Yes"/"no", blanks; yes is 1, no is 0; a pair with a blank is dropped
    a = ["Yes", "no", " YES ", None, "yes", "No", "4.0"]
    b = [1, 0, 0, 1, "", True, 3]
    x, y = [1, 0, 1, 0, 4], [1, 0, 0, 1, 3]  # pairs 4 and 5 dropped
    assert pearson(a, b) == pytest.approx(pearsonr(x, y)[0]) and spearman(a, b) == pytest.approx(spearmanr(x, y)[0])
    assert pearson([1, 1, 1], [1, 2, 3]) is None and pearson([1], [2]) is None  # undefined, not 0
    with pytest.raises(ValueError, match="pearson: ratings must be numbers or yes/no, got 'full_refusal'"):
        pearson(["full_refusal", "full_compliance"], ["full_refusal", "full_refusal"])


def test_rating_agreement_names_its_weighting_and_counts_what_it_dropped():
    from psychosafe.curation.review.agreement import rating_agreement

    a, b = RATER_A + [None, 3], RATER_B + [2, math.nan]
    row = rating_agreement(a, b, categories=[1, 2, 3, 4, 5], weights="linear")
    assert (row.n, row.missing, row.kappa_weights) == (16, 2, "linear")
    assert row.kappa == pytest.approx(cohen_kappa_score(RATER_A, RATER_B, labels=[1, 2, 3, 4, 5], weights="linear"))
    assert row.exact == pytest.approx(sum(x == y for x, y in zip(RATER_A, RATER_B)) / 16)
    assert rating_agreement(a, b).kappa_weights == "unweighted"
    classes = rating_agreement(["Full_Refusal", "full_compliance"], ["full_refusal", "partial_refusal"])
    assert (classes.pearson, classes.spearman, classes.exact) == (None, None, 0.5)  # no correlation of classes
    assert classes.as_dict()["kappa_weights"] == "unweighted"
