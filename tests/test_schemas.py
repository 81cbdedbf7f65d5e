import re

import pytest
import yaml

from psychosafe.errors import InputError
from psychosafe.schemas import (
    RECORD_FEATURES,
    Record,
    contact_key,
    default_resources,
    default_rubric,
    default_taxonomy,
    load_resources,
    load_rubric,
    load_taxonomy,
    normalize_prompt,
    record_id,
    records_to_dataset,
)
from psychosafe.schemas.resources import RESOURCES_FILE
from psychosafe.schemas.rubric import RUBRIC_FILE
from psychosafe.schemas.taxonomy import TAXONOMY_FILE

DOMAINS = ["suicide_self_harm", "substance", "violence", "weapon", "sexual_crimes"]


def _edited(path, tmp_path, edit):
    data = yaml.safe_load(path.read_text())
    edit(data)
    out = tmp_path / path.name
    out.write_text(yaml.safe_dump(data))
    return out


def test_taxonomy_has_the_papers_domains_with_categories_and_strategies():
    t = default_taxonomy()
    assert t.domain_ids() == DOMAINS
    for d in t.domains:
        assert len(d.categories) >= 4
    assert {s.id for s in t.domain("suicide_self_harm").strategies} == {"psychological_first_aid", "safety_planning",
                                                                        "algee", "qpr"}
    assert {s.id for s in t.domain("weapon").strategies} == {"green_dot", "motivational_interviewing"}
    assert t.highest_risk(["weapon", "suicide_self_harm"]) == "suicide_self_harm"


def test_strategy_choice_fits_intent_and_is_stable():
    t = default_taxonomy()
    chosen = {t.choose_strategy("suicide_self_harm", "crisis", f"id{i}") for i in range(40)}
    assert chosen == {"safety_planning", "qpr"}  # the strategies whose intents include crisis
    assert t.choose_strategy("substance", "curiosity", "abc") == t.choose_strategy("substance", "curiosity", "abc")


def test_rubric_criteria_match_the_record_scores():
    r = default_rubric()
    assert [c.id for c in r.criteria] == ["refusal", "grounding", "references", "relevance"]
    assert r.criterion("grounding").scale_to_unit(4) == 0.75
    assert r.benign.option_ids() == ["full_compliance", "full_refusal", "partial_refusal"]


def test_resources_api_the_prompts_and_checks_use():
    d = default_resources()
    assert {"en-GB", "en-US"} <= set(d.locales())
    for locale in ("en-US", "en-GB"):
        for domain in DOMAINS:
            assert d.for_domain(domain, locale), (locale, domain)
    index = d.contact_index("en-US")
    assert index[contact_key("phone", "(800) 662-4357", "en-US")] == "us_samhsa_helpline"
    assert index[contact_key("phone", "(800) 662-4357")] == "us_samhsa_helpline"  # callers without a locale
    assert index[contact_key("url", "http://rainn.org/get-help")] == "us_rainn_hotline"
    assert contact_key("phone", "+44 808 500 2222", "en-GB") == contact_key("phone", "0808 500 2222", "en-GB")
    assert d.resource("us_rainn_hotline").describe() == (
        "RAINN National Sexual Assault Hotline (24/7): call 1-800-656-4673, https://www.rainn.org")
    assert all(str(r.source).startswith(("https://", "http://")) for r in d.resources)


def test_unknown_strategy_in_a_domain_names_file_and_entry(tmp_path):
    hugs = {"id": "hugs", "intents": ["distress"]}
    path = _edited(TAXONOMY_FILE, tmp_path, lambda d: d["domains"][2]["strategies"].append(hugs))
    with pytest.raises(InputError) as err:
        load_taxonomy(path)
    msg = str(err.value)
    assert str(path) in msg and "domains[2] (violence)" in msg and "'hugs'" in msg


def test_too_few_categories_is_named(tmp_path):
    path = _edited(TAXONOMY_FILE, tmp_path,
                   lambda d: d["domains"][1].update(categories=d["domains"][1]["categories"][:2]))
    with pytest.raises(InputError, match=re.escape("domains[1] (substance).categories")):
        load_taxonomy(path)


def test_bad_yaml_names_the_line(write):
    path = write("taxonomy.yaml", "version: 1\ndomains: [a, b\nintents: x\n")
    with pytest.raises(InputError) as err:
        load_taxonomy(path)
    assert err.value.line is not None and "not valid YAML" in str(err.value)


def test_rubric_threshold_out_of_range(tmp_path):
    path = _edited(RUBRIC_FILE, tmp_path, lambda d: d["thresholds"].update(grounding=9))
    with pytest.raises(InputError, match="thresholds.grounding: expected an integer from 1 to 5"):
        load_rubric(path)


def test_rubric_scale_anchors_must_cover_the_scale(tmp_path):
    path = _edited(RUBRIC_FILE, tmp_path, lambda d: d["criteria"][1]["anchors"].pop("3"))
    with pytest.raises(InputError, match="criteria\\[1\\] \\(grounding\\)"):
        load_rubric(path)


def test_resource_with_unknown_domain_or_fake_url(tmp_path):
    path = _edited(RESOURCES_FILE, tmp_path, lambda d: d["resources"][0].update(domains=["gambling"]))
    expected = "resources[0] (us_988_lifeline).domains: unknown domain(s) ['gambling']"
    with pytest.raises(InputError, match=re.escape(expected)):
        load_resources(path)
    bare = {"kind": "url", "value": "poison.org"}
    path = _edited(RESOURCES_FILE, tmp_path, lambda d: d["resources"][3]["contacts"].append(bare))
    with pytest.raises(InputError, match="must start with https://"):
        load_resources(path)


def test_features_are_derived_from_the_record():
    # the stored fields, then `messages`, built from the earlier turns, prompt and response (kept only inside it)
    assert list(RECORD_FEATURES) == [f for f in Record.model_fields if f != "earlier_turns"] + ["messages"]
    assert set(RECORD_FEATURES["scores"]) >= {"refusal", "grounding", "references", "relevance", "judge_model"}
    record = Record(id=record_id("Hi there", "substance"), prompt="Hi there", label="benign", domain="substance")
    ds = records_to_dataset([record])
    assert ds.features == RECORD_FEATURES
    assert ds[0]["review"]["status"] == "pending"


def test_record_ids_are_stable_and_normalised():
    assert record_id("How do I  hide it?", "substance") == record_id("how do i hide it", "substance")
    assert record_id("How do I hide it?", "substance") != record_id("How do I hide it?", "weapon")
    assert normalize_prompt("  ＨＥＬＬＯ   world!! ") == "hello world"
    with pytest.raises(ValueError, match="unknown domain 'gambling'"):
        Record(id="x", prompt="p", label="harmful", domain="gambling")
