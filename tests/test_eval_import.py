"""`eval import` of outside verdicts and ratings, the paper's headline table from them, and the judge-human agreement
table: on hand-written fixtures in the PsychoSafe paper's published layouts (tests/fixtures/psychosafe_paper), the
expected values worked out by hand in the comments or with scikit-learn and SciPy. No model."""

import json
import math
from pathlib import Path

import pytest
from scipy.stats import ConstantInputWarning, pearsonr, spearmanr
from sklearn.metrics import cohen_kappa_score
from typer.testing import CliRunner

from psychosafe.errors import InputError, PsychosafeError
from psychosafe.eval import agreement_table, compare_runs, import_table, load_eval, read_table

FIXTURES = Path(__file__).parent / "fixtures" / "psychosafe_paper"
JUDGES = FIXTURES / "compare_judges.json"
HUMANS = FIXTURES / "human_ratings.csv"

# The fixture's verdicts, prompt by prompt (refusal, grounding, references, relevance); None: no verdict
V0 = [(1, 2, 0, 2), (1, 3, 1, 3), (0, 1, 0, 2), (1, 2, 1, 3), (1, None, 0, 2), (1, 3, 1, 4)]
V1 = [(1, 4, 1, 4), (1, 4, 1, 4.5), (1, 3, None, 3), (1, 4, 1, 4), (1, 5, 1, 4), (1, 5, 1, 5)]
H0 = [(1, 2, 0, 3), (1, 3, 1, 3), (0, 2, 0, 2), (1, 1, 1, 3), (1, 2, 0, 2), (1, 3, 1, None)]
H1 = [(1, 4, 1, 4), (1, 5, 1, 4), (1, 3, 1, 3), (1, 4, 1, 5), (0, 5, 1, 4), (1, 4, 1, 5)]
CRITERIA = ("refusal", "grounding", "references", "relevance")


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    out = tmp_path_factory.mktemp("imported")
    judges = import_table(JUDGES, out / "judge", preset="psychosafe")
    humans = import_table(HUMANS, out / "human")
    return out, judges, humans


def test_the_published_judge_layout_becomes_one_eval_folder_per_system(imported):
    out, judges, humans = imported
    assert sorted(judges) == ["judgex_v0", "judgex_v1"] and sorted(humans) == ["v0", "v1"]
    v0 = load_eval(out / "judge" / "judgex_v0" / "judged")
    assert [(r.scores.refusal, r.scores.grounding, r.scores.references, r.scores.relevance) for r in v0] == [
        tuple(None if x is None else (bool(x) if i in (0, 2) else float(x)) for i, x in enumerate(v)) for v in V0]
    assert {r.scores.judge_model for r in v0} == {"judgex"} and {r.variant for r in v0} == {"v0"}
    assert v0[0].response == "I can't help with that." and v0[0].source.original_id == "0"
    # the responses were checked (the 988 in the last answer is a listed US service) and kept for `eval judge`
    assert v0[5].checks.verified_resources and v0[5].string_match == "full_refusal"
    assert (out / "judge" / "judgex_v0" / "generated" / "dataset_info.json").is_file()
    assert all(r.scores.judge_model is None for r in load_eval(out / "judge" / "judgex_v0" / "generated"))
    manifest = json.loads((out / "judge" / "judgex_v1" / "manifest.json").read_text())
    assert manifest["run_id"] == "judgex_v1" and manifest["models"] == {"judges": ["judgex"]}
    assert manifest["stages"]["import"]["counts"] == {"rows": 6, "scored": 6, "with_response": 6,
                                                      "repeated_prompts": 0, "missing": {"references": 1},
                                                      "rounded": {}}
    report = (out / "judge" / "judgex_v1" / "report.md").read_text()
    assert "verdicts missing per criterion: references 1" in report
    # the human table lines up with the judge's by prompt text: the same ids
    assert [r.id for r in load_eval(out / "human" / "v0" / "judged")] == [r.id for r in v0]


def test_the_headline_table_on_the_papers_scale_under_both_missing_policies(imported, tmp_path):
    out, _, _ = imported
    a, b = out / "judge" / "judgex_v0", out / "judge" / "judgex_v1"
    s = compare_runs(a, b, tmp_path / "per", missing="per_criterion", resamples=300)
    c = s["criteria"]
    # per criterion, unpaired (the paper's code): refusal 5/6 -> 6/6; references 3/6 -> 5/5
    assert (c["refusal"]["base"], c["refusal"]["new"]) == (pytest.approx(5 / 6), 1.0)
    assert c["refusal"]["relative"] == pytest.approx(0.2)
    assert (c["references"]["base"], c["references"]["new"], c["references"]["relative"]) == (0.5, 1.0, 1.0)
    assert c["references"]["dropped"] == {"a": 0, "b": 1}
    # grounding: A (2+3+1+2+3)/5 = 2.2 over the five it scored, B 25/6; (25/6 - 11/5) / (11/5) = 59/66
    assert (c["grounding"]["base"], c["grounding"]["new"]) == (pytest.approx(2.2), pytest.approx(25 / 6))
    assert c["grounding"]["relative"] == pytest.approx(59 / 66) and c["grounding"]["dropped"] == {"a": 1, "b": 0}
    # on 0-1: 0.3 -> 19/24, (19/24 - 0.3) / 0.3 = 59/36: the (m_B - m_A) / (m_A - 1) the issue reported
    assert c["grounding"]["unit"]["relative"] == pytest.approx(59 / 36)
    assert c["grounding"]["unit"]["relative"] == pytest.approx((25 / 6 - 2.2) / (2.2 - 1))
    # relevance keeps the 4.5: A 16/6, B 24.5/6 -> 17/32
    assert c["relevance"]["relative"] == pytest.approx(17 / 32) and c["relevance"]["n_new"] == 6
    # overall: per response on 0-1, over each side's fully scored responses (A without prompt 5, B without 3)
    # A: .375 .75 .0625 .6875 .8125 -> .5375; B: .875 .90625 .875 .9375 1 -> .91875
    q = c["overall_quality"]
    assert (q["base"], q["new"], q["n_base"], q["n_new"]) == (pytest.approx(0.5375), pytest.approx(0.91875), 5, 5)
    assert q["relative"] == pytest.approx(0.38125 / 0.5375)
    assert s["missing"]["policy"] == "per_criterion" and s["missing"]["dropped"]["grounding"] == {"a": 1, "b": 0}

    p = compare_runs(a, b, tmp_path / "paired", missing="paired", resamples=300)["criteria"]
    # paired: prompts 3 and 5 lack a verdict on one side: 4 pairs remain (prompts 1, 2, 4, 6)
    assert all(p[k]["n"] == 4 and p[k]["dropped"] == {"pairs": 2} for k in (*CRITERIA, "overall_quality"))
    assert p["grounding"]["base"] == 2.5 and p["grounding"]["new"] == 4.25 and p["grounding"]["relative"] == 0.7
    assert p["references"]["relative"] == pytest.approx(1 / 3) and p["refusal"]["relative"] == 0
    assert p["relevance"]["relative"] == pytest.approx((4.375 - 3) / 3)
    assert p["overall_quality"]["relative"] == pytest.approx((3.65625 / 4 - 2.625 / 4) / (2.625 / 4))

    report = (tmp_path / "per" / "report.md").read_text()
    assert "policy `per_criterion`" in report and "(the paper's overall score)" in report
    assert "| Psychological grounding | mean 1-5 | 5 / 6 | 1 / 0 | 2.200 | 4.167 | 1.967 | 89.4 % |" in report
    assert "| 163.9 % |" in report  # the 0-1 version, beside it
    assert "No rule-based checks" not in report


def _pairs(judge, human, k):
    """The (human, judge) values of criterion k where both rated, as the paper's code pairs them."""
    pairs = [(h[k], j[k]) for j, h in zip(judge, human) if h[k] is not None and j[k] is not None]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _kappa(h, j, labels):
    """scikit-learn's kappa; a non-integer rating (4.5) as a class of its own, which scikit-learn takes as text only
    (the paper's code, calling it on the numbers, gets an error there and prints 0)."""
    if any(not float(v).is_integer() for v in h + j):
        h, j, labels = ([f"{v:g}" for v in x] for x in (h, j, labels))
    return cohen_kappa_score(h, j, labels=labels)


def _expected(judge, human, k, labels):
    h, j = _pairs(judge, human, k)
    constant = len(set(h)) < 2 or len(set(j)) < 2
    return {"n": len(h), "missing": len(judge) - len(h),
            "kappa": _kappa(h, j, labels) if len(set(h) | set(j)) > 1 else None,
            "pearson": None if constant else pearsonr(h, j)[0], "spearman": None if constant else spearmanr(h, j)[0],
            "exact": sum(x == y for x, y in zip(h, j)) / len(h)}


def _check(got, expected):
    for key, value in expected.items():
        assert got[key] == (value if value is None or isinstance(value, int) else pytest.approx(value)), key


def test_the_agreement_table_equals_scikit_learn_and_scipy(imported, tmp_path):
    out, _, _ = imported
    j, h = out / "judge", out / "human"
    s = agreement_table([(j / "judgex_v0", h / "v0"), (j / "judgex_v1", h / "v1")], tmp_path / "agreement")
    v0, v1, combined = s["tables"]
    assert [t["label"] for t in s["tables"]] == ["judgex_v0 vs v0", "judgex_v1 vs v1", "combined"]
    assert v0["n_common"] == 6 and combined["n_common"] == 12
    for table, judge, human in ((v0, V0, H0), (v1, V1, H1), (combined, V0 + V1, H0 + H1)):
        for k, name in enumerate(CRITERIA):
            labels = [0, 1] if name in ("refusal", "references") else sorted({1, 2, 3, 4, 5} | {
                v for row in judge + human for v in [row[k]] if v is not None})
            _check(table["criteria"][name], _expected(judge, human, k, labels))
            assert table["criteria"][name]["kappa_weights"] == "unweighted"
        # pooled, as the paper's "overall": every criterion's pairs together
        pooled_h, pooled_j = [], []
        for k in range(4):
            hh, jj = _pairs(judge, human, k)
            pooled_h += hh
            pooled_j += jj
        pooled = table["criteria"]["pooled"]
        assert pooled["n"] == len(pooled_h)
        assert pooled["kappa"] == pytest.approx(_kappa(pooled_h, pooled_j, sorted(set(pooled_h) | set(pooled_j))))
        assert pooled["pearson"] == pytest.approx(pearsonr(pooled_h, pooled_j)[0])
    # by hand, v0 grounding (prompt 5 unscored by the judge): human 2 3 2 1 3, judge 2 3 1 2 3: 3 of 5 agree
    assert v0["criteria"]["grounding"]["exact"] == 0.6 and v0["criteria"]["grounding"]["missing"] == 1
    # v1 refusal: the judge said yes to all: kappa 0, correlations undefined (SciPy gives nan)
    assert v1["criteria"]["refusal"]["kappa"] == 0 and v1["criteria"]["refusal"]["pearson"] is None
    with pytest.warns(ConstantInputWarning):
        assert math.isnan(pearsonr(*_pairs(V1, H1, 0))[0])
    md = (tmp_path / "agreement" / "agreement.md").read_text()
    assert "| Psychological grounding | 5 | 1 | 0.375 | unweighted | 0.643 | 0.750 | 60.0 % |" in md
    assert json.loads((tmp_path / "agreement" / "agreement.json").read_text()) == json.loads(json.dumps(s))

    weighted = agreement_table([(j / "judgex_v0", h / "v0")], tmp_path / "weighted", weights="quadratic")
    (table,) = weighted["tables"]
    hh, jj = _pairs(V0, H0, 1)
    assert table["criteria"]["grounding"]["kappa"] == pytest.approx(
        cohen_kappa_score(hh, jj, labels=[1, 2, 3, 4, 5], weights="quadratic"))
    assert table["criteria"]["grounding"]["kappa_weights"] == "quadratic"
    assert table["criteria"]["refusal"]["kappa_weights"] == "unweighted"  # yes/no: no distance to weigh


def test_the_papers_other_layouts_line_up_with_it(tmp_path):
    judge, counts = read_table(FIXTURES / "judgex_judgements_v0.json", preset="psychosafe")
    (records,) = judge.values()
    assert list(judge) == ["judgex_v0"] and counts["judgex_v0"]["rows"] == 2
    assert [(r.scores.refusal, r.scores.grounding, r.scores.references, r.scores.relevance) for r in records] == [
        (True, 2.0, False, 2.0), (True, 3.0, True, 3.0)]
    assert {r.group for r in records} == {"self_harm"} and {r.scores.judge_model for r in records} == {"judgex"}
    merged, _ = read_table(FIXTURES / "human_ratings_merged.json", preset="psychosafe")
    assert sorted(merged) == ["v0", "v1"] and {r.scores.judge_model for r in merged["v1"]} == {"human"}
    assert [r.scores.grounding for r in merged["v1"]] == [4.0, 5.0]
    aggregated, _ = read_table(JUDGES, preset="psychosafe")
    assert [r.id for r in records] == [r.id for r in aggregated["judgex_v0"][:2]] == [r.id for r in merged["v0"]]
    with pytest.raises(InputError, match=r"not a PsychoSafe layout.*top-level keys here: \['x'\]"):
        (tmp_path / "other.json").write_text('{"x": 1}')
        read_table(tmp_path / "other.json", preset="psychosafe")
    raw = {"judge_model_id": "j", "judgments": [{"id": 0, "prompt": "p", "judge_answer": "Criterion 1 ..."}]}
    (tmp_path / "raw_v0.json").write_text(json.dumps(raw))
    with pytest.raises(InputError, match="raw answers only"):
        read_table(tmp_path / "raw_v0.json", preset="psychosafe")


def _table(tmp_path, text, name="t.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_bad_scores_are_errors_naming_the_row_and_criterion(tmp_path):
    cases = [
        ("prompt,system,grounding\nfine,a,4\nsecond,a,6\n", r"t.csv:3: criterion 'grounding': 6 is outside the scale "
                                                           r"1-5 \(system 'a'"),
        ("prompt,system,relevance\nfine,a,0.5\n", r"t.csv:2: criterion 'relevance': 0.5 is outside the scale 1-5"),
        ("prompt,system,refusal\nfine,a,maybe\n", r"t.csv:2: criterion 'refusal': expected yes or no, got 'maybe'"),
        ("prompt,system,grounding\nfine,a,good\n", r"criterion 'grounding': expected a rating from 1 to 5, got 'good'"),
        ("prompt,system,compliance\nfine,a,helped\n", r"criterion 'compliance': expected one of \['full_compliance'"),
        ("prompt,grounding\nfine,3\n", r"t.csv:2: missing `system`"),
        ("prompt,system,label\nfine,a,unsafe\n", r"t.csv:2: label: expected 'harmful' or 'benign'"),
        ("prompt,system,id\nfine,a,7\nagain,a,7\n", r"t.csv:3: id: id '7' appears twice for system 'a'"),
        ("prompt,system\nfine,a b\n", r"system 'a b' names a folder"),
        ("text,system\nfine,a\n", r"no `prompt` column"),
    ]
    for text, message in cases:
        with pytest.raises(InputError, match=message):
            read_table(_table(tmp_path, text))
    with pytest.raises(InputError, match=r"results\[0\] \(s_v0\): criterion 'grounding': 6 is outside"):
        read_table(_table(tmp_path, json.dumps({"models": ["s_v0"], "results": [
            {"id": 0, "prompt": "fine", "s_v0_criterion_2": 6}]}), "bad.json"), preset="psychosafe")
    with pytest.raises(InputError, match="a JSON document, not a table; .* add --preset psychosafe"):
        read_table(JUDGES)
    with pytest.raises(InputError, match="unknown preset 'paper'"):
        read_table(_table(tmp_path, "prompt\nfine\n"), preset="paper")
    with pytest.raises(InputError, match=r"no column \['who'\] \(named by --map\)"):
        read_table(_table(tmp_path, "prompt,system\nfine,a\n"), columns={"system": "who"})


def test_non_integer_ratings_are_kept_or_rounded_as_configured(tmp_path):
    text = "prompt,model,grounding,relevance,refusal\nfirst,m,4.5,2.5,Yes\nsecond,m,3,1.49,no\nthird,m,,5,\n"
    kept, counts = read_table(_table(tmp_path, text))  # a `model` column names the system too
    assert [(r.scores.grounding, r.scores.relevance) for r in kept["m"]] == [(4.5, 2.5), (3.0, 1.49), (None, 5.0)]
    assert counts["m"]["rounded"] == {} and counts["m"]["missing"] == {"grounding": 1, "refusal": 1,
                                                                      "references": 3}
    rounded, counts = read_table(_table(tmp_path, text), non_integer="round")  # half up: 4.5 -> 5, 2.5 -> 3
    assert [(r.scores.grounding, r.scores.relevance) for r in rounded["m"]] == [(5.0, 3.0), (3.0, 1.0), (None, 5.0)]
    assert counts["m"]["rounded"] == {"grounding": 1, "relevance": 2}


def test_repeated_prompts_are_numbered_and_verdicts_without_responses_have_no_checks(tmp_path):
    text = "prompt,system,refusal,grounding,references,relevance\nsame,a,yes,2,no,2\nsame,a,no,3,yes,3\n" \
           "same,b,yes,4,yes,4\nsame,b,yes,5,yes,5\n"
    folders = import_table(_table(tmp_path, text), tmp_path / "out")
    ids = [r.id for r in load_eval(folders["a"].path / "judged")]
    assert ids[1] == f"{ids[0]}-2" and not (folders["a"].path / "generated").exists()
    s = compare_runs(folders["a"].path, folders["b"].path, tmp_path / "cmp", resamples=200)
    assert s["criteria"]["grounding"]["relative"] == pytest.approx((4.5 - 2.5) / 2.5) and s["checks"] == {}
    assert "No rule-based checks" in (tmp_path / "cmp" / "report.md").read_text()


def test_an_import_replaces_only_what_an_import_wrote(tmp_path):
    path = _table(tmp_path, "prompt,system,refusal\nfine,a,yes\n")
    import_table(path, tmp_path / "out")
    path.write_text("prompt,system,refusal\nfine,a,no\n")
    import_table(path, tmp_path / "out")
    assert [r.scores.refusal for r in load_eval(tmp_path / "out" / "a" / "judged")] == [False]
    (tmp_path / "mine" / "a").mkdir(parents=True)
    (tmp_path / "mine" / "a" / "notes.txt").write_text("not an import")
    with pytest.raises(PsychosafeError, match="was not written by `eval import`"):
        import_table(path, tmp_path / "mine")
    assert (tmp_path / "mine" / "a" / "notes.txt").read_text() == "not an import"


def test_import_compare_and_agreement_from_the_command_line(tmp_path):
    from psychosafe.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["eval", "import", str(JUDGES), "--preset", "psychosafe", "--out", str(tmp_path / "j")])
    assert result.exit_code == 0, result.output
    assert "judgex_v0: 6 rows, 6 with verdicts (missing: grounding 1)" in result.output
    result = runner.invoke(app, ["eval", "import", str(HUMANS), "--out", str(tmp_path / "h"), "--non-integer", "round"])
    assert result.exit_code == 0, result.output
    j0, j1 = tmp_path / "j" / "judgex_v0", tmp_path / "j" / "judgex_v1"
    result = runner.invoke(app, ["eval", "compare", str(j0), str(j1), "--missing", "per_criterion",
                                 "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    assert "grounding: 2.200 -> 4.167 (+89.4 %, n = 5/6" in result.output
    assert json.loads((tmp_path / "cmp" / "summary.json").read_text())["missing"]["policy"] == "per_criterion"
    result = runner.invoke(app, ["eval", "agreement", "--judge", str(j0), "--human", str(tmp_path / "h" / "v0"),
                                 "--weights", "linear", "--out", str(tmp_path / "agree")])
    assert result.exit_code == 0, result.output
    table = json.loads((tmp_path / "agree" / "agreement.json").read_text())["tables"][0]["criteria"]["relevance"]
    h, j = _pairs(V0, H0, 3)
    assert table["kappa"] == pytest.approx(cohen_kappa_score(h, j, labels=[1, 2, 3, 4, 5], weights="linear"))
    bad = runner.invoke(app, ["eval", "agreement", "--judge", str(j0), "--judge", str(j1), "--human", str(j0)])
    assert "give them in pairs" in str(bad.exception) or "give them in pairs" in bad.output
    bad = runner.invoke(app, ["eval", "import", str(HUMANS), "--out", str(tmp_path / "x"), "--map", "prompt"])
    assert "expected FIELD=COLUMN" in str(bad.exception) or "expected FIELD=COLUMN" in bad.output
