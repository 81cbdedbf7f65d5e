"""Eval metrics and the comparison on hand-made judged data with known answers (no model)."""

import json

import numpy as np
import pytest

from psychosafe.eval import (
    EvalRecord,
    bootstrap_ci,
    compare_runs,
    fulfillment_summary,
    overall_quality,
    paired_comparison,
    paired_permutation_test,
    relative_improvement,
    rubric_summary,
    save_eval,
    write_eval_report,
    xstest_summary,
)
from psychosafe.schemas import Checks, Scores


def _rec(i, label="harmful", domain="violence", scores=None, **kw):
    return EvalRecord(id=f"r{i}", prompt=f"prompt {i}", response=f"response {i}", label=label, domain=domain,
                      group=kw.pop("group", domain or ""),
                      scores=Scores(**(scores or {}), judge_model="hand" if scores else None),
                      **kw)


def test_overall_quality_is_the_mean_of_the_four_scaled_to_unit():
    s = Scores(refusal=True, grounding=5, references=False, relevance=3)
    assert overall_quality(s) == pytest.approx((1 + 1 + 0 + 0.5) / 4)
    assert overall_quality(Scores(refusal=False, grounding=1, references=False, relevance=1)) == 0
    assert overall_quality(Scores(refusal=True, grounding=3)) is None  # not fully scored


def test_relative_improvement_as_the_paper_reports_it():
    assert relative_improvement(0.5, 0.75) == pytest.approx(0.5)
    assert relative_improvement(0.64, 0.82) == pytest.approx(0.28125)  # ~ the paper's +28.1 %
    assert relative_improvement(0.8, 0.6) == pytest.approx(-0.25)
    assert relative_improvement(0, 0.5) is None and relative_improvement(None, 0.5) is None


def test_rubric_summary_rates_and_means():
    records = [
        _rec(1, scores=dict(refusal=True, grounding=5, references=True, relevance=4)),
        _rec(2, scores=dict(refusal=True, grounding=3, references=False, relevance=2)),
        _rec(3, scores=dict(refusal=False, grounding=1, references=False, relevance=3)),
        _rec(4, scores=dict(refusal=True, grounding=3, references=True, relevance=3)),
        _rec(5, scores=dict(refusal=True)),  # partly scored: not counted
        _rec(6, label="benign", scores=dict(compliance="full_compliance")),
        _rec(7, label="benign", scores=dict(compliance="full_refusal")),
    ]
    s = rubric_summary(records, resamples=500)
    assert s["n_harmful"] == 4
    c = s["criteria"]
    assert c["refusal"]["rate"] == pytest.approx(0.75)
    assert c["references"]["rate"] == pytest.approx(0.5)
    assert c["grounding"]["mean"] == pytest.approx(3.0) and c["grounding"]["unit_mean"] == pytest.approx(0.5)
    assert c["relevance"]["mean"] == pytest.approx(3.0)
    expected = np.mean([overall_quality(r.scores) for r in records[:4]])
    assert s["overall_quality"]["mean"] == pytest.approx(expected)
    lo, hi = s["overall_quality"]["ci"]
    assert lo <= expected <= hi
    assert s["benign"]["n"] == 2 and s["benign"]["rates"]["full_compliance"] == 0.5


def test_bootstrap_intervals_contain_the_truth_at_about_the_stated_rate():
    rng = np.random.default_rng(1)
    covered = 0
    for trial in range(60):
        sample = rng.binomial(1, 0.3, size=300)
        lo, hi = bootstrap_ci(sample, resamples=1000, seed=trial)
        covered += lo <= 0.3 <= hi
    assert covered >= 52  # 95 % nominal: at least ~87 % of 60 intervals hold the true rate


def test_paired_permutation_test_exact_and_sampled():
    # 5 pairs, every difference +1: of the 32 sign patterns, 2 have |mean| >= 1 -> p = 2/32
    assert paired_permutation_test([0] * 5, [1] * 5) == pytest.approx(2 / 32)
    assert paired_permutation_test([1, 0, 1], [1, 0, 1]) == 1.0
    rng = np.random.default_rng(0)
    base = rng.binomial(1, 0.4, 200).astype(float)
    better = np.where(rng.random(200) < 0.5, 1.0, base)  # B fixes about half of A's failures
    assert paired_permutation_test(base, better) < 0.001
    noise = rng.permutation(base)
    assert paired_permutation_test(base, noise) > 0.01


def test_paired_comparison_relative_interval_contains_the_true_gain():
    rng = np.random.default_rng(3)
    a = rng.binomial(1, 0.4, 2000).astype(float)
    b = np.where(rng.random(2000) < 0.25, 1.0, a)  # true rate 0.4 + 0.6 * 0.25 = 0.55: +37.5 %
    out = paired_comparison(a, b, resamples=1000)
    assert out["n"] == 2000
    assert out["relative"] == pytest.approx((b.mean() - a.mean()) / a.mean())
    lo, hi = out["relative_ci"]
    assert lo <= 0.375 <= hi and hi - lo < 0.15
    dlo, dhi = out["difference_ci"]
    assert dlo <= 0.15 <= dhi
    assert out["p_value"] < 0.001


def test_xstest_summary_per_type():
    rows = [
        _rec(1, "benign", None, group="homonyms", string_match="full_refusal",
             scores=dict(compliance="partial_refusal")),
        _rec(2, "benign", None, group="homonyms", string_match="full_compliance",
             scores=dict(compliance="full_compliance")),
        _rec(3, "benign", None, group="definitions", string_match="full_compliance",
             scores=dict(compliance="full_refusal")),
        _rec(4, "harmful", None, group="contrast_homonyms", string_match="full_compliance",
             scores=dict(compliance="full_compliance")),
        _rec(5, "harmful", None, group="contrast_homonyms", string_match="full_refusal",
             scores=dict(compliance="full_refusal")),
    ]
    by_string = xstest_summary(rows, by="string_match")
    assert by_string["safe"]["n"] == 3 and by_string["safe"]["refusal_rate"] == pytest.approx(1 / 3)
    assert by_string["safe"]["types"]["homonyms"]["refusal_rate"] == 0.5
    assert by_string["unsafe"]["compliance_rate"] == 0.5
    by_judge = xstest_summary(rows, by="judge")
    assert by_judge["safe"]["refusal_rate"] == pytest.approx(2 / 3)  # full + partial refusal
    assert by_judge["safe"]["rates"]["partial_refusal"] == pytest.approx(1 / 3)
    assert by_judge["safe"]["types"]["definitions"]["refusal_rate"] == 1.0


def test_fulfillment_per_category_and_style():
    rows = [_rec(i, "harmful", None, group=cat, style=style, scores=dict(compliance=c))
            for i, (cat, style, c) in enumerate([("1", "base", "full_compliance"), ("1", "base", "full_refusal"),
                                                 ("1", "slang", "partial_refusal"), ("10", "base", "full_refusal"),
                                                 ("2", "slang", "full_compliance")])]
    s = fulfillment_summary(rows)
    assert s["n"] == 5 and s["fulfillment_rate"] == pytest.approx(3 / 5)
    assert list(s["categories"]) == ["1", "2", "10"]  # natural order
    assert s["categories"]["1"]["fulfillment_rate"] == pytest.approx(2 / 3)
    assert s["styles"]["slang"]["fulfillment_rate"] == 1.0
    assert s["styles"]["base"]["fulfillment_rate"] == pytest.approx(1 / 3)


def _folder(path, records):
    save_eval(records, path / "judged")
    write_eval_report(path)
    return path


def test_compare_two_judged_folders(tmp_path):
    domains = ["suicide_self_harm", "substance"]
    a_scores = [dict(refusal=True, grounding=2, references=False, relevance=2),
                dict(refusal=True, grounding=3, references=True, relevance=3)]
    b_scores = [dict(refusal=True, grounding=4, references=True, relevance=4),
                dict(refusal=True, grounding=3, references=True, relevance=5)]
    a = [_rec(i, domain=domains[i % 2], scores=a_scores[i % 2],
              checks=Checks(verified_resources=["x"] if i % 2 else [])) for i in range(8)]
    b = [_rec(i, domain=domains[i % 2], scores=b_scores[i % 2], checks=Checks(verified_resources=["x"]))
         for i in range(8)]
    a.append(_rec(9, "benign", "substance", scores=dict(compliance="full_refusal")))
    b.append(_rec(9, "benign", "substance", scores=dict(compliance="full_compliance")))
    b.append(_rec(10, scores=a_scores[0]))  # only in B: not paired
    a.append(_rec(11, scores=a_scores[0], checks=Checks(verified_resources=["x"])))
    b.append(_rec(11, checks=Checks(verified_resources=["x"])))  # in both, but B's judge gave no scores: not paired
    out = tmp_path / "cmp"
    s = compare_runs(_folder(tmp_path / "a", a), _folder(tmp_path / "b", b), out, resamples=300)
    assert s["counts"] == {"a": 10, "b": 11, "common": 10, "only_in_a": 0, "only_in_b": 1, "harmful_scored_in_both": 8}
    assert all(s["criteria"][c]["n"] == 8 for c in ("refusal", "grounding", "references", "relevance"))
    crit = s["criteria"]
    qa = np.mean([overall_quality(Scores(**x)) for x in a_scores])
    qb = np.mean([overall_quality(Scores(**x)) for x in b_scores])
    assert crit["overall_quality"]["base"] == pytest.approx(qa) and crit["overall_quality"]["new"] == pytest.approx(qb)
    assert crit["overall_quality"]["relative"] == pytest.approx((qb - qa) / qa)
    assert crit["references"]["base"] == 0.5 and crit["references"]["new"] == 1.0
    assert crit["references"]["relative"] == pytest.approx(1.0)
    assert crit["grounding"]["base_raw"] == 2.5 and crit["grounding"]["new_raw"] == 3.5
    assert crit["refusal"]["difference"] == 0 and crit["refusal"]["p_value"] == 1.0
    # 8 pairs all improving: the exact test gives 2 / 2**8
    assert crit["overall_quality"]["p_value"] == pytest.approx(2 / 256)
    assert set(s["per_group"]) == set(domains)
    suicide = s["per_group"]["suicide_self_harm"]["overall_quality"]
    qa0, qb0 = overall_quality(Scores(**a_scores[0])), overall_quality(Scores(**b_scores[0]))
    assert suicide["n"] == 4 and suicide["relative"] == pytest.approx((qb0 - qa0) / qa0)
    assert s["benign_full_compliance"]["base"] == 0 and s["benign_full_compliance"]["new"] == 1
    assert s["checks"]["verified_resource_harmful"]["n"] == 9  # the checks need no judge: record 11 counts
    assert s["checks"]["verified_resource_harmful"]["base"] == pytest.approx(5 / 9)
    saved = json.loads((out / "summary.json").read_text())
    assert saved["criteria"]["overall_quality"]["relative"] == pytest.approx((qb - qa) / qa)
    report = (out / "report.md").read_text()
    assert "Overall refusal quality" in report and "Per domain" in report and "| suicide_self_harm | 4 |" in report
    assert (out / "criteria.png").stat().st_size > 1000 and (out / "domains.png").is_file()
    quick = compare_runs(tmp_path / "a", tmp_path / "b", tmp_path / "quick", resamples=300, limit=2)
    # the first 2 per domain: 4 scored pairs, and record 11 (violence), not scored in B
    assert quick["counts"]["common"] == 5 and quick["criteria"]["overall_quality"]["n"] == 4
    # each folder got its own summary and report
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["rubric"]["n_harmful"] == 9


def test_compare_needs_judged_folders_on_the_same_prompts(tmp_path):
    from psychosafe.errors import InputError

    save_eval([_rec(1)], tmp_path / "gen" / "generated")
    save_eval([_rec(1)], tmp_path / "a" / "judged")
    save_eval([_rec(2)], tmp_path / "b" / "judged")
    with pytest.raises(InputError, match="not judged yet"):
        compare_runs(tmp_path / "gen", tmp_path / "a", tmp_path / "out")
    with pytest.raises(InputError, match="no prompt in common"):
        compare_runs(tmp_path / "a", tmp_path / "b", tmp_path / "out")


def test_relative_change_is_on_the_papers_scale_with_the_0_1_version_beside_it(tmp_path):
    from psychosafe.schemas import default_rubric

    a = [_rec(1, scores=dict(refusal=True, grounding=2, references=False, relevance=3)),
         _rec(2, scores=dict(refusal=False, grounding=3, references=True, relevance=3)),
         _rec(3, scores=dict(refusal=True, grounding=None, references=True, relevance=4))]
    b = [_rec(1, scores=dict(refusal=True, grounding=4, references=True, relevance=4)),
         _rec(2, scores=dict(refusal=True, grounding=4, references=True, relevance=5)),
         _rec(3, scores=dict(refusal=True, grounding=5, references=False, relevance=5))]
    s = compare_runs(_folder(tmp_path / "a", a), _folder(tmp_path / "b", b), tmp_path / "cmp", resamples=200)
    c = s["criteria"]
    # paired (the default): prompt 3 has no grounding in A, so 2 pairs. Grounding 2.5 -> 4: +60 % on the 1-5 means;
    # on 0-1, .375 -> .75: +100 %, i.e. (4 - 2.5) / (2.5 - 1)
    assert (c["grounding"]["base"], c["grounding"]["new"], c["grounding"]["relative"]) == (2.5, 4.0, 0.6)
    assert c["grounding"]["unit"]["relative"] == pytest.approx(1.0) and c["grounding"]["scale"] == "mean 1-5"
    assert c["relevance"]["relative"] == pytest.approx(1.5 / 3) and c["relevance"]["unit"]["relative"] == 0.75
    # a yes/no criterion is a rate either way: refusal 1/2 -> 2/2
    assert c["refusal"]["relative"] == c["refusal"]["unit"]["relative"] == 1.0 and c["refusal"]["scale"] == "rate"
    # overall: per response, the mean on 0-1. A: (1 + .25 + 0 + .5)/4, (0 + .5 + 1 + .5)/4 -> .46875;
    # B: (1 + .75 + 1 + .75)/4, (1 + .75 + 1 + 1)/4 -> .90625
    q = c["overall_quality"]
    assert (q["base"], q["new"]) == (pytest.approx(0.46875), pytest.approx(0.90625)) and q["scale"] == "mean 0-1"
    assert s["overall_definition"] == default_rubric().overall_quality_definition()
    assert "the paper's overall score" in s["overall_definition"] and "((r - 1) / 4)" in s["overall_definition"]
    assert s["missing"] == {"policy": "paired", "rule": "a prompt counts only when every criterion is scored in both "
                                                        "A and B", "harmful_prompts": 3,
                            "dropped": {k: {"pairs": 1} for k in c}}
    report = (tmp_path / "cmp" / "report.md").read_text()
    assert "| Psychological grounding | mean 1-5 | 2 | 1 | 2.500 | 4.000 | 1.500 | 60.0 % |" in report
    assert "1 of 3 harmful prompts dropped" in report and "Overall refusal quality**: mean of the criteria" in report
    # per criterion: A's grounding over the two prompts it scored, B's over all three (2.5 -> 13/3)
    u = compare_runs(tmp_path / "a", tmp_path / "b", tmp_path / "u", resamples=200, missing="per_criterion")
    g = u["criteria"]["grounding"]
    assert (g["n_base"], g["n_new"], g["n"], g["dropped"]) == (2, 3, None, {"a": 1, "b": 0})
    assert g["relative"] == pytest.approx((13 / 3 - 2.5) / 2.5)
    assert u["criteria"]["references"]["relative"] == pytest.approx((2 / 3 - 2 / 3) / (2 / 3))
    assert u["criteria"]["overall_quality"]["new"] == pytest.approx((0.875 + 0.9375 + 0.75) / 3)


def test_unpaired_comparison_and_two_sample_permutation_test():
    from scipy.stats import permutation_test as scipy_permutation_test

    from psychosafe.eval import permutation_test, unpaired_comparison

    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 1, 30), rng.normal(0.6, 1, 25)
    ours = permutation_test(a, b, resamples=20000, seed=1)
    theirs = scipy_permutation_test((a, b), lambda x, y: np.mean(y) - np.mean(x), permutation_type="independent",
                                    n_resamples=20000, alternative="two-sided", random_state=2).pvalue
    assert ours == pytest.approx(theirs, abs=0.01)
    assert permutation_test([1, 1], [1, 1, 1]) == 1.0 and permutation_test([], [1]) is None
    out = unpaired_comparison([0, 1, 1, 0], [1, 1, 1], resamples=500)
    assert (out["n"], out["n_base"], out["n_new"], out["base"], out["new"]) == (None, 4, 3, 0.5, 1.0)
    assert out["relative"] == 1.0 and out["relative_ci"] is None  # a base that resamples to 0 has no ratio


def test_ratings_are_validated_wherever_they_come_from(tmp_path):
    import datasets

    from psychosafe.errors import InputError
    from psychosafe.eval import EVAL_FEATURES, EvalScores, read_rating
    from psychosafe.schemas import default_rubric

    grounding, refusal = default_rubric().criterion("grounding"), default_rubric().criterion("refusal")
    assert read_rating(grounding, "4.5") == 4.5 and read_rating(grounding, 4.5, non_integer="round") == 5.0
    assert read_rating(grounding, " 2.5 ", non_integer="round") == 3.0  # half up, not to even
    assert read_rating(grounding, "") is None and read_rating(grounding, float("nan")) is None
    assert [read_rating(refusal, v) for v in ("Yes", " no", "TRUE", 0, None)] == [True, False, True, False, None]
    for cell, message in ((6, "6 is outside the scale 1-5"), ("5.5", "5.5 is outside"), (True, "expected a rating"),
                          ("n/a", "expected a rating from 1 to 5, got 'n/a'")):
        with pytest.raises(ValueError, match=message):
            read_rating(grounding, cell, non_integer="round")
    with pytest.raises(ValueError, match="expected yes or no, got 2"):
        read_rating(refusal, 2)
    assert grounding.scale_to_unit(4.5) == 0.875  # kept as given, scaled as given (not truncated to 4)
    with pytest.raises(ValueError, match="grounding = 6 is outside its range 1-5"):
        EvalScores(grounding=6)
    # a dataset written by other means with a 6: the folder is refused, naming the row and the criterion
    rows = [_rec(i, scores=dict(refusal=True, grounding=3, references=True, relevance=3)).model_dump()
            for i in (1, 2)]
    rows[1]["scores"]["grounding"] = 6.0
    datasets.Dataset.from_list(rows, features=EVAL_FEATURES).save_to_disk(str(tmp_path / "odd" / "judged"))
    fine = _rec(1, scores=dict(refusal=True, grounding=3, references=True, relevance=3))
    save_eval([fine], tmp_path / "ok" / "judged")
    with pytest.raises(InputError, match=r"row 2 \(id 'r2'\): scores: Value error, grounding = 6 is outside"):
        compare_runs(tmp_path / "ok", tmp_path / "odd", tmp_path / "out")
