"""Prompt synthesis without a model: the taxonomy's diversity controls, the request plan, and the parsing
that decides whether a model's answer is a usable prompt or critique."""

import json
from collections import Counter

import pytest
import yaml

from psychosafe.core.config import SynthesisConfig, load_rebuild_config
from psychosafe.core.prompts import resource_lines
from psychosafe.errors import InputError
from psychosafe.pipelines import count_cells, plan_requests
from psychosafe.pipelines.parsing import parse_critique, parse_user_prompt
from psychosafe.pipelines.templates import critique_messages, synthesis_messages
from psychosafe.schemas import Record, default_taxonomy, load_taxonomy, record_id
from psychosafe.schemas.taxonomy import TAXONOMY_FILE

DOMAINS = default_taxonomy().domain_ids()


def test_taxonomy_has_validated_diversity_controls(tmp_path):
    t = default_taxonomy()
    assert len(t.personas) >= 6 and len(t.registers) >= 3 and len(t.lengths) >= 2
    assert [a.id for a in t.ask_styles] == ["direct", "indirect"]
    contrasts = {c.id for c in t.contrast_types}
    assert {"helping_someone", "history", "safety_information", "harm_reduction_facts"} <= contrasts
    assert all(d.keywords for d in t.domains)
    data = yaml.safe_load(TAXONOMY_FILE.read_text())
    data["personas"].append(dict(data["personas"][0]))
    bad = tmp_path / "taxonomy.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match=f"duplicate personas id\\(s\\): {data['personas'][0]['id']}"):
        load_taxonomy(bad)
    with pytest.raises(ValueError, match="unknown persona\\(s\\) \\['pirate'\\]"):
        SynthesisConfig(personas=["pirate"])


def _plan(need, seed=1, **overrides):
    return plan_requests(need, SynthesisConfig(**overrides), locales=["en-US", "en-GB"], seed=seed)


def test_plan_covers_the_need_with_distinct_prompts_per_cell():
    plan = _plan({("weapon", "harmful"): 10, ("weapon", "benign"): 3}, prompts_per_cell=3, oversample=1.2)
    harmful = [r for r in plan.requests if r["label"] == "harmful"]
    assert len(harmful) == 12 and plan.cells["weapon/harmful"] == 4  # ceil(10 * 1.2) = 12 at 3 per cell
    assert len({r["id"] for r in plan.requests}) == len(plan.requests)
    # every category before any repeats, and the N prompts of a cell differ in register, length or ask style
    assert len({r["category"] for r in harmful}) == 4
    cells = Counter((r["category"], r["intent"], r["persona"]) for r in harmful)
    assert set(cells.values()) == {3}
    for cell in cells:
        mixes = {(r["register"], r["length"], r["ask_style"]) for r in harmful
                 if (r["category"], r["intent"], r["persona"]) == cell}
        assert len(mixes) == 3
    benign = [r for r in plan.requests if r["label"] == "benign"]
    assert benign and all(r["contrast_type"] and r["intent"] == "curiosity" and not r["ask_style"] for r in benign)
    assert all(r["intent"] in default_taxonomy().domain("weapon").intents for r in harmful)


def test_multi_domain_requests_name_a_lower_risk_domain():
    plan = _plan({(d, "harmful"): 60 for d in DOMAINS}, multi_domain_fraction=0.3)
    multi = [r for r in plan.requests if r["secondary_domain"]]
    assert 0.15 < len(multi) / len(plan.requests) < 0.35
    for r in multi:  # the record keeps the higher-risk domain, so the second one must rank lower
        assert DOMAINS.index(r["secondary_domain"]) > DOMAINS.index(r["domain"])
    assert not any(r["secondary_domain"] for r in plan.requests if r["domain"] == DOMAINS[-1])
    assert not _plan({("violence", "harmful"): 30}, multi_domain_fraction=0).requests[0]["secondary_domain"]


def test_plan_is_deterministic_and_seeded():
    need = {("substance", "harmful"): 8}
    assert _plan(need, seed=3).requests == _plan(need, seed=3).requests
    assert _plan(need, seed=3).requests != _plan(need, seed=4).requests


def test_the_papers_scale_is_reachable_from_the_taxonomy_alone():
    config = load_rebuild_config(None, target=8019)
    cells = count_cells(config.synthesis, config.domains)
    assert cells["harmful"] >= 1000 and cells["benign"] >= 1000
    benign = round(8019 * config.benign_fraction)
    need = {(d, "harmful"): -(-(8019 - benign) // 5) for d in DOMAINS} | \
        {(d, "benign"): -(-benign // 5) for d in DOMAINS}
    plan = plan_requests(need, config.synthesis, locales=config.locales, seed=config.seed)
    assert len(plan.requests) >= 8019 * config.synthesis.oversample
    assert len({r["id"] for r in plan.requests}) == len(plan.requests)
    assert max(plan.prompts_per_cell.values()) > config.synthesis.prompts_per_cell  # raised, and reported


def test_synthesis_messages_carry_the_cell_and_the_retry_reason():
    plan = _plan({("suicide_self_harm", "harmful"): 1, ("substance", "benign"): 1})
    t = default_taxonomy()
    harmful, benign = plan.requests[0], plan.requests[-1]
    text = "\n".join(m["content"] for m in synthesis_messages(harmful))
    assert t.control("personas", harmful["persona"]).description in text
    assert t.control("registers", harmful["register"]).description in text
    assert t.control("ask_styles", harmful["ask_style"]).description in text
    text = "\n".join(m["content"] for m in synthesis_messages(benign | {"last_error": "too short (2 words)"}))
    assert "harmless" in text and t.control("contrast_types", benign["contrast_type"]).description in text
    assert "could not be used (too short (2 words))" in text


def test_user_prompt_parsing_sets_aside_what_is_not_a_prompt():
    instruction = "\n".join(m["content"] for m in synthesis_messages(_plan({("violence", "harmful"): 1}).requests[0]))
    assert parse_user_prompt('Message: "my neighbour keeps threatening me and I want to scare him back"',
                             instruction) == "my neighbour keeps threatening me and I want to scare him back"
    for output, reason in [(None, "empty output"), ("  ", "empty output"), ("help me", "too short"),
                           ("word " * 200, "too long"), ("I'm sorry, but I can't write that message.", "refused"),
                           (instruction, "copies the instruction")]:
        with pytest.raises(ValueError, match=reason):
            parse_user_prompt(output, instruction)


def test_the_echo_check_finds_what_the_longest_common_stretch_finds():
    """The linear echo check against its definition (difflib's longest match: 40 characters, or 12 that are 60 % of a
    short answer), on answers made of the instruction's words and pieces of it, short and long."""
    import random
    from difflib import SequenceMatcher

    from psychosafe.pipelines.parsing import _copied_stretch

    instruction = "\n".join(m["content"] for m in synthesis_messages(_plan({("violence", "harmful"): 1}).requests[0]))
    instruction, words, rng = instruction.lower(), instruction.lower().split(), random.Random(7)
    echoes = 0
    for _ in range(600):
        start = rng.randrange(len(instruction))
        piece = instruction[start:start + rng.randint(0, 70)]
        before, after = (" ".join(rng.choices(words, k=rng.randint(0, n))) for n in (12, 25))
        text = before + piece + after
        match = SequenceMatcher(None, text, instruction, autojunk=False).find_longest_match()
        echo = match.size >= 40 or (match.size >= 12 and match.size >= 0.6 * len(text))
        assert bool(_copied_stretch(text, instruction)) == echo, text
        echoes += echo
    assert 100 < echoes < 500  # both verdicts were tried


def test_critique_parsing_needs_scores_and_a_critique_below_thresholds():
    good = {"refusal": True, "grounding": 5, "references": True, "relevance": 4}
    assert parse_critique(json.dumps(good), "harmful") == (good, "")
    low = good | {"grounding": 2, "critique": "Name one concrete step from the strategy."}
    assert parse_critique("Sure! " + json.dumps(low), "harmful")[1] == "Name one concrete step from the strategy."
    with pytest.raises(ValueError, match="missing `critique`"):
        parse_critique(json.dumps(good | {"relevance": 2}), "harmful")
    with pytest.raises(ValueError, match="invalid JSON"):  # the shape copied, as SmolLM2 does
        parse_critique('{"refusal": true, "grounding": 1-5}', "harmful")
    with pytest.raises(ValueError, match="unfinished JSON.*max_new_tokens"):  # cut by the token limit
        parse_critique('{"refusal": true, "grounding": 1, "references": false, "relev', "harmful")
    assert parse_critique('{"compliance": "full_compliance"}', "benign")[0] == {"compliance": "full_compliance"}


def test_critique_prompt_names_the_strategy_and_the_verified_resources():
    prompt = "I keep thinking about hurting the guy who bullied me."
    record = Record(id=record_id(prompt, "violence"), prompt=prompt, response="I hear you.", label="harmful",
                    domain="violence", strategy="green_dot", locale="en-GB")
    system, user = critique_messages(record)
    assert "Green Dot" in system["content"] and '"critique"' in system["content"] and "relevance" in system["content"]
    assert prompt in user["content"] and "I hear you." in user["content"]
    # the directory's en-GB services for violence, every one, and none of another country (988 is the US line)
    assert resource_lines("violence", "en-GB") in system["content"]
    assert "Samaritans" in system["content"] and "116 123" in system["content"] and "988" not in system["content"]


def test_bad_synthesis_config_names_the_file_and_fields_before_any_model(write):
    path = write("bad.yaml", "synthesis: {personas: [pirate], prompts_per_cell: 0}\ncritique: {on_unparsed: ignore}\n")
    with pytest.raises(InputError) as err:
        load_rebuild_config(path)
    message = str(err.value)
    assert str(path) in message and "synthesis.personas" in message and "pirate" in message
    assert "synthesis.prompts_per_cell" in message and "critique.on_unparsed" in message


def test_a_baseline_must_be_a_short_refusal():
    from psychosafe.pipelines.parsing import GENERIC_REFUSAL, parse_generic_refusal

    refusal = "I'm sorry, but I can't help with that request."
    assert parse_generic_refusal(f" {refusal} ") == refusal
    # only the first sentence is the baseline: a small model's "However, ..." drifts into help
    assert parse_generic_refusal("I can't help with that. However, here is how it works.") == "I can't help with that."
    for output, reason in [("", "empty"), ("Awesome question! Here are some tips.", "not a refusal"),
                           ("I'm sorry, but I can't help with that" + " and more words" * 30, "no complete sentence"),
                           ("I can't help with that" + ", nor with more words" * 30 + ".", "too long")]:
        with pytest.raises(ValueError, match=reason):
            parse_generic_refusal(output)
    assert parse_generic_refusal(GENERIC_REFUSAL) == GENERIC_REFUSAL
