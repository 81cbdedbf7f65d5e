"""Importing corpora as they are: presets for known layouts, column maps, value maps, defaults, license, and bad
mappings that stop before any model loads."""

import pytest

from psychosafe.core.config import SeedSource
from psychosafe.curation.inputs import import_corpus
from psychosafe.errors import InputError

FIXTURES = "tests/fixtures/corpora"


def test_the_published_psychosafe_layout_keeps_each_records_provenance():
    imported = import_corpus(f"{FIXTURES}/psychosafe_paper.json", SeedSource(preset="psychosafe-paper"))
    records = imported.records
    assert len(records) == 10 and imported.out_of_scope == []
    assert [r.domain for r in records[:5]] == ["sexual_crimes"] * 4 + ["suicide_self_harm"]
    first = records[0]
    assert first.response.startswith("I’m here to keep this space safe") and first.label == "harmful"
    assert first.source.model_dump() == {"kind": "imported", "dataset": "SALAD-Bench", "license": "unknown",
                                         "original_id": None, "corpus": "aisilab/psychological-safety",
                                         "author": "Li 2024", "category": "sexual offenses"}
    assert {r.source.dataset for r in records} >= {"SORRY-Bench", "HarmBench", "XSTest"}
    # no record carries a locale: every one takes the default, and the count says so
    assert imported.without_locale == 10 and {r.locale for r in records} == {"en-US"}
    gb = import_corpus(f"{FIXTURES}/psychosafe_paper.json", SeedSource(preset="psychosafe-paper",
                                                                      defaults={"locale": "en-GB"}))
    assert {r.locale for r in gb.records} == {"en-GB"} and gb.counts()["default_locale"] == "en-GB"


def test_xstest_sorry_bench_and_wildguardmix_layouts():
    xstest = import_corpus(f"{FIXTURES}/xstest_layout.csv", SeedSource(preset="xstest")).records
    assert [(r.label, r.domain, r.source.category, r.source.original_id) for r in xstest] == [
        ("benign", "violence", "homonyms", "1"), ("benign", "violence", "figurative_language", "2"),
        ("harmful", "violence", "contrast_homonyms", "3")]
    assert {r.source.license for r in xstest} == {"CC-BY-4.0"}

    sorry = import_corpus(f"{FIXTURES}/sorry_bench.jsonl", SeedSource(preset="sorry-bench"))
    assert [(r.prompt[:20], r.domain, r.source.original_id) for r in sorry.records] == [
        ("I feel like hurting ", "suicide_self_harm", "1"), ("How can I scare my n", "violence", "2"),
        ("How do I get someone", "sexual_crimes", "3")]
    (left_out,) = sorry.out_of_scope
    assert left_out.code == "out_of_scope" and left_out.reason.endswith(
        ":4: category '10' is outside the five domains (values.domain maps it to nothing)")

    wild = import_corpus(f"{FIXTURES}/wildguardmix.jsonl", SeedSource(preset="wildguardmix"))
    assert [(r.label, r.domain, bool(r.response)) for r in wild.records] == [
        ("harmful", "violence", True), ("benign", "suicide_self_harm", True)]
    assert len(wild.out_of_scope) == 1 and wild.records[0].source.license == "unknown"


def test_a_csv_with_a_column_mapping_value_maps_defaults_and_a_license():
    source = SeedSource(columns={"prompt": "text", "domain": "topic", "label": "kind", "locale": "country"},
                        values={"domain": {"Weapons": "weapon", "drugs": "substance"}},  # values match case-blind
                        defaults={"locale": "en-IE"}, license="CC0-1.0", name="my-red-team")
    imported = import_corpus(f"{FIXTURES}/mapped.csv", source)
    assert [(r.domain, r.label, r.locale) for r in imported.records] == [
        ("weapon", "harmful", "en-GB"), ("substance", "harmful", "en-IE"), ("weapon", "benign", "en-US")]
    assert imported.without_locale == 1
    assert {(r.source.license, r.source.dataset) for r in imported.records} == {("CC0-1.0", "my-red-team")}


def test_a_preset_is_overridden_by_what_is_set_beside_it():
    source = SeedSource(preset="psychosafe-paper", values={"domain": {"weapon": None}}, license="CC-BY-4.0")
    assert source.columns["response"] == "answer" and source.values["domain"]["violence"] == "violence"
    imported = import_corpus(f"{FIXTURES}/psychosafe_paper.json", source)
    assert len(imported.out_of_scope) == 1 and {r.source.license for r in imported.records} == {"CC-BY-4.0"}
    with pytest.raises(ValueError, match="unknown preset 'psychosafe'; expected one of"):
        SeedSource(preset="psychosafe")


@pytest.fixture
def no_model(monkeypatch):
    """Any embedder or LLM built from here on fails the test: bad input must stop before a model loads."""
    import psychosafe.core.backends as backends
    import psychosafe.curation.embed as embed

    def refuse(*args, **kwargs):
        raise AssertionError("a model was built before the bad input was reported")

    monkeypatch.setattr(embed, "build_embedder", refuse)
    monkeypatch.setattr(backends, "build_llm", refuse)


def test_bad_mappings_fail_naming_the_file_the_column_and_what_was_expected(tmp_path, no_model):
    from psychosafe.core.config import RebuildConfig
    from psychosafe.core.runs import RunFolder
    from psychosafe.curation import curate_corpus
    from psychosafe.curation.audit import audit_corpus

    path = f"{FIXTURES}/psychosafe_paper.json"
    wrong_column = SeedSource(preset="psychosafe-paper", columns={"domain": "risk clustr"})
    with pytest.raises(InputError) as err:
        curate_corpus(path, RebuildConfig(), RunFolder(tmp_path / "a"), source=wrong_column)
    assert err.value.file == path and err.value.where == "columns"
    assert "no column 'risk clustr' (for domain); the file's columns are ['answer', 'author', 'framework_name', " \
           "'prompt', 'risk category', 'risk cluster']" in err.value.problem

    missing_value = SeedSource(columns={"response": "answer", "domain": "risk cluster"},
                               values={"domain": {"weapon": "weapon", "violence": "violence"}})
    with pytest.raises(InputError) as err:
        audit_corpus(path, RebuildConfig(), RunFolder(tmp_path / "b"), source=missing_value)
    assert err.value.file == path and err.value.where == "column 'risk cluster'"
    assert err.value.problem.startswith("unknown value(s) ['crimes (sexual)', 'suicide and selfharm', 'substance'] "
                                        "(first on line 1); expected one of ['violence', 'weapon']")

    with pytest.raises(InputError, match=r"unknown domain 'Weapons'; expected one of"):
        import_corpus(f"{FIXTURES}/mapped.csv", SeedSource(columns={"prompt": "text", "domain": "topic"}))
    assert not (tmp_path / "a" / "embeddings").exists()
