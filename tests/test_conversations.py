"""Conversations without a model: the record's turns (messages kept in step with prompt and response), bad turns
named, the taxonomy's patterns, the config, the conversation rubric and its prompt text, the plan, the user
simulator's prompt and parsing, and the system prompt by turn."""

import json

import pytest
import yaml
from conversation_turns import TURNS

from psychosafe.core.config import ConversationConfig, load_rebuild_config
from psychosafe.core.prompts import HELPFUL, response_system_prompt
from psychosafe.errors import InputError
from psychosafe.pipelines.conversations import plan_conversations
from psychosafe.pipelines.tasks import GenericRefusal, PsychoSafeResponse, SelfCritique, SimulateUserTurn, record_rows
from psychosafe.pipelines.templates import (
    RISK_MARK,
    conversation_text,
    critique_messages,
    revision_messages,
    rubric_text,
    scores_json_schema,
    user_turn_messages,
)
from psychosafe.schemas import (
    RECORD_FEATURES,
    Record,
    dataset_to_records,
    default_rubric,
    default_taxonomy,
    load_taxonomy,
    record_id,
    records_to_dataset,
    row_to_record,
)
from psychosafe.schemas.conversations import ConversationError, conversation_of_row
from psychosafe.schemas.taxonomy import TAXONOMY_FILE


def _conversation(**update) -> Record:
    users = [t["content"] for t in TURNS if t["role"] == "user"]
    data = {"id": record_id(users[-1], "suicide_self_harm", users[:-1]), "label": "harmful",
            "domain": "suicide_self_harm", "strategy": "safety_planning", "pattern": "gradual_disclosure",
            "risk_turn": 3, "messages": TURNS} | update
    return Record.model_validate(data)


# -- the record ---------------------------------------------------------------------------------------

def test_messages_are_the_earlier_turns_then_prompt_and_response():
    record = _conversation()
    assert (record.prompt, record.response) == (TURNS[4]["content"], TURNS[5]["content"])
    assert [t.model_dump() for t in record.earlier_turns] == TURNS[:4]
    assert [m.model_dump() for m in record.messages] == TURNS
    assert record.is_conversation and record.turn == 3 and record.user_turns == [t["content"] for t in TURNS[::2]]
    # a stage that updates the response (model_copy skips validators) cannot leave the conversation behind
    revised = record.model_copy(update={"response": "A revised answer."})
    assert revised.messages[-1].content == "A revised answer." and revised.messages[:5] == record.messages[:5]
    single = Record(id="s", prompt="How do I store medicine safely?", response="Lock it away.", label="benign",
                    domain="substance")
    assert [m.model_dump() for m in single.messages] == [{"role": "user", "content": single.prompt},
                                                         {"role": "assistant", "content": "Lock it away."}]
    assert not single.is_conversation and single.turn == 1
    # no response yet: the conversation ends with the user's turn
    assert [m.role for m in single.model_copy(update={"response": ""}).messages] == ["user"]


def test_rows_carry_messages_in_chat_format_and_read_back_to_the_same_record():
    record, single = _conversation(), Record(id="s", prompt="Hello there", response="Hi!", label="benign",
                                             domain="violence")
    assert RECORD_FEATURES["messages"].feature == {"role": RECORD_FEATURES["prompt"],
                                                   "content": RECORD_FEATURES["prompt"]}
    assert "earlier_turns" not in RECORD_FEATURES  # stored only as part of `messages`
    ds = records_to_dataset([record.model_copy(update={"response": "Edited."}), single])
    assert ds[0]["messages"][-1] == {"role": "assistant", "content": "Edited."} and len(ds[0]["messages"]) == 6
    assert ds[0]["pattern"] == "gradual_disclosure" and ds[0]["risk_turn"] == 3
    back = dataset_to_records(ds)
    assert back == [record.model_copy(update={"response": "Edited."}), single]
    # a row with `messages` only: prompt and response come from its last turns; where the row has them, they stand
    assert row_to_record({"id": "x", "label": "harmful", "domain": "substance", "messages": TURNS}).prompt == \
        TURNS[4]["content"]
    edited = row_to_record(ds[0] | {"response": "The review's edit."})
    assert edited.messages[-1].content == "The review's edit." and edited.earlier_turns == record.earlier_turns
    assert record_id(record.prompt, record.domain) != record.id  # a conversation is named by all its user turns
    assert record_id(single.prompt, "violence") == record_id(single.prompt, "violence", [])


@pytest.mark.parametrize(("turns", "pattern", "message"), [
    ([{"content": "hi"}], None, "messages: turn 1: no `role`; expected 'user' or 'assistant'"),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  "}], None,
     "messages: turn 2: empty assistant turn; expected its text in `content`"),
    ([{"role": "user", "content": "hi"}, {"role": "user", "content": "are you there?"}], "gradual_disclosure",
     "messages: turn 2: two user turns in a row (turns 1 and 2), which pattern 'gradual_disclosure' does not allow "
     "(taxonomy.yaml: consecutive_user_turns)"),
    ([{"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "hi"}], None,
     "messages: turn 1: the conversation opens with an assistant turn; expected the user's first"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "assistant", "content": "c"}],
     None, "messages: turn 3: two assistant turns in a row"),
    ([{"role": "system", "content": "Be kind."}, {"role": "user", "content": "hi"}], None,
     "messages: turn 1: a system turn is not part of a record's conversation"),
    ([{"role": "user", "content": "hi"}, {"role": "tool", "content": "x"}], None,
     "messages: turn 2: role 'tool'; expected 'user' or 'assistant'"),
])
def test_bad_turns_are_named(turns, pattern, message):
    row = {"messages": turns} | ({"pattern": pattern} if pattern else {})
    with pytest.raises(ConversationError) as err:
        conversation_of_row(row)
    assert str(err.value).startswith(message)
    with pytest.raises(ValueError) as err:  # the same text when a row becomes a record
        row_to_record(row | {"id": "x", "label": "harmful", "domain": "substance"})
    assert str(err.value).startswith(message)


def test_a_pattern_may_allow_two_user_turns_in_a_row_and_a_row_says_where_the_risk_is():
    two = [{"role": "user", "content": "hey"}, {"role": "user", "content": "got a minute?"}]
    assert len(conversation_of_row({"messages": two, "pattern": "indirect_signals"})["messages"]) == 2
    as_text = json.dumps(TURNS)  # a CSV cell holds the turns as JSON text
    assert conversation_of_row({"messages": as_text, "risk_turn": "3"})["risk_turn"] == 3
    with pytest.raises(ConversationError, match=r"risk_turn: expected a user turn from 1 to 3, got 4"):
        conversation_of_row({"messages": TURNS, "risk_turn": 4})
    with pytest.raises(ConversationError, match=r"pattern: unknown pattern 'slow_burn'"):
        conversation_of_row({"messages": TURNS, "pattern": "slow_burn"})
    with pytest.raises(ConversationError, match=r"messages: not JSON"):
        conversation_of_row({"messages": "[{role: user}"})
    with pytest.raises(ValueError, match="pattern: 'benign_throughout' is a benign pattern, but the label is harmful"):
        _conversation(pattern="benign_throughout")
    assert conversation_of_row({"prompt": "no conversation here"}) == {}


def test_an_imported_conversation_keeps_its_turns_and_a_bad_one_names_file_line_and_turn(write):
    from psychosafe.core.config import SeedSource
    from psychosafe.pipelines import import_seeds

    good = {"messages": TURNS, "domain": "suicide_self_harm", "pattern": "gradual_disclosure", "risk_turn": 3}
    path = write("conversations.jsonl", "\n".join(json.dumps(row) for row in [
        good,
        {"messages": [TURNS[0], {"content": "no role here"}], "domain": "substance"},
        {"messages": [TURNS[0], TURNS[2]], "domain": "substance", "pattern": "gradual_disclosure"},
        {"messages": [TURNS[0], {"role": "assistant", "content": ""}], "domain": "substance"},
    ]))
    result = import_seeds([SeedSource(path=str(path), license="CC-BY-4.0")])
    (record,) = result.records
    assert [m.model_dump() for m in record.messages] == TURNS and record.risk_turn == 3
    assert record.id == _conversation().id and record.response == TURNS[5]["content"]
    assert [p.reason for p in result.problems] == [
        f"{path}:2: messages: turn 2: no `role`; expected 'user' or 'assistant'",
        f"{path}:3: messages: turn 2: two user turns in a row (turns 1 and 2), which pattern 'gradual_disclosure' "
        "does not allow (taxonomy.yaml: consecutive_user_turns)",
        f"{path}:4: messages: turn 2: empty assistant turn; expected its text in `content`"]
    only_bad = write("bad.jsonl", json.dumps({"messages": [{"role": "user", "content": " "}], "domain": "weapon"}))
    with pytest.raises(InputError, match=rf"{only_bad}: no valid seed row \({only_bad}:1: messages: turn 1: empty "
                                         "user turn"):
        import_seeds([SeedSource(path=str(only_bad))])


# -- patterns, config, rubric -------------------------------------------------------------------------------

def test_patterns_are_data_with_a_brief_for_every_turn(tmp_path):
    t = default_taxonomy()
    assert t.pattern_ids() == ["gradual_disclosure", "intent_escalation", "indirect_signals",
                               "persistence_after_refusal", "follow_up_after_help", "benign_throughout"]
    persistence = t.pattern("persistence_after_refusal")
    assert persistence.risk_turn(4) == 1 and persistence.min_turns == 4
    briefs = [persistence.brief(k, 5) for k in range(1, 6)]
    assert briefs[0] == persistence.risk and briefs[1:4] == persistence.after_risk and briefs[4] == briefs[3]
    disclosure = t.pattern("gradual_disclosure")
    assert [disclosure.brief(k, 4) for k in range(1, 5)] == [*disclosure.ordinary, disclosure.ordinary[-1],
                                                              disclosure.risk]
    assert t.pattern("benign_throughout").risk_turn(3) is None
    data = yaml.safe_load(TAXONOMY_FILE.read_text())
    data["patterns"][5]["risk"] = "asks for something harmful"
    bad = tmp_path / "taxonomy.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match=r"patterns\[5\] \(benign_throughout\).*a benign pattern has no risk"):
        load_taxonomy(bad)


def test_conversation_config_is_checked_before_any_model(write):
    assert ConversationConfig().share == 0 and ConversationConfig().pattern_ids() == default_taxonomy().pattern_ids()
    embedded = load_rebuild_config(None).conversations  # the default run holds conversations of three user turns
    assert embedded.share > 0 and embedded.turn_range("gradual_disclosure") == (3, 3)
    assert ConversationConfig(min_turns=3, max_turns=5).turn_range("persistence_after_refusal") == (4, 5)
    path = write("run.yaml", "conversations: {share: 0.5, patterns: [slow_burn], min_turns: 5, max_turns: 3}\n")
    with pytest.raises(InputError) as err:
        load_rebuild_config(path)
    assert "conversations.patterns: Value error, unknown pattern(s) ['slow_burn']" in str(err.value)
    with pytest.raises(ValueError, match="min_turns 5 is more than max_turns 3"):
        ConversationConfig(min_turns=5, max_turns=3)
    with pytest.raises(ValueError, match=r"pattern\(s\) \{'persistence_after_refusal': 4\} need more user turns "
                                         r"than max_turns 3"):
        ConversationConfig(min_turns=2, max_turns=3, patterns=["persistence_after_refusal"])


def test_conversation_criteria_beside_the_four():
    rubric = default_rubric()
    assert [c.id for c in rubric.conversation] == ["risk_noticed", "consistency", "continuity"]
    assert [c.id for c in rubric.criteria_for("harmful")] == ["refusal", "grounding", "references", "relevance"]
    assert rubric.criteria_for("benign", conversation=True) == []
    four = {"refusal": True, "grounding": 4, "references": True, "relevance": 4}
    assert rubric.shortfalls(four, "harmful") == []  # a single prompt is not held to the conversation criteria
    assert rubric.shortfalls(four, "harmful", conversation=True) == ["risk_noticed missing", "consistency missing",
                                                                     "continuity missing"]
    scored = four | {"risk_noticed": True, "consistency": False, "continuity": 2}
    assert rubric.shortfalls(scored, "harmful", conversation=True) == ["consistency is no", "continuity 2 < 3"]
    assert rubric.overall_quality(scored) == 0.875  # the paper's four only: (1 + 0.75 + 1 + 0.75) / 4


# -- prompt text: judge, critique, simulator ----------------------------------------------------------------

def test_the_critique_reads_the_whole_conversation_with_the_conversation_criteria():
    record = _conversation()
    text = conversation_text(record.messages, record.risk_turn)
    assert text.startswith("[User, turn 1]\nCan you help me plan meals")
    assert f"[User, turn 3, {RISK_MARK}]\nI feel like giving up" in text and text.count("[Assistant]") == 3
    system, user = critique_messages(record)
    for c in default_rubric().conversation:
        assert c.question.strip() in system["content"] and f'"{c.id}"' in system["content"]
    assert conversation_text(record.messages[:5], 3) in user["content"]
    assert f"draft reply to the last message:\n[[{record.response}]]" in user["content"]
    single = critique_messages(record.model_copy(update={"earlier_turns": [], "pattern": None, "risk_turn": None}))
    assert "risk_noticed" not in single[0]["content"]
    schema = scores_json_schema("harmful", with_critique=True, conversation=True)
    assert list(schema["properties"]) == ["refusal", "grounding", "references", "relevance", "risk_noticed",
                                          "consistency", "continuity", "critique"]
    assert "every assistant turn" in rubric_text("benign", conversation=True)
    revision = revision_messages(record, "Name the service.")
    assert [m["role"] for m in revision] == ["system", "user", "assistant", "user", "assistant", "user", "assistant",
                                             "user"]
    assert revision[1:7] == TURNS and "Name the service." in revision[-1]["content"]


def _llm():
    from distilabel.models import OpenAILLM

    return OpenAILLM(model="x", base_url="http://127.0.0.1:9/v1", api_key="x")  # builds a Task; nothing is called


def test_tasks_see_the_conversation_and_the_assistant_is_helpful_until_the_risk_turn():
    record = _conversation()
    before_risk = record.model_copy(update={"earlier_turns": record.earlier_turns[:2], "prompt": TURNS[2]["content"],
                                            "response": ""})
    assert response_system_prompt(before_risk) == HELPFUL
    assert "Safety Planning Intervention" in response_system_prompt(record)
    (row,) = record_rows([before_risk])
    assert json.loads(row["earlier_turns"]) == TURNS[:2] and row["risk_turn"] == "3"
    chat = PsychoSafeResponse(name="respond", llm=_llm()).format_input(row)
    assert chat[0] == {"role": "system", "content": HELPFUL} and chat[1:] == TURNS[:3]
    baseline = GenericRefusal(name="baseline", llm=_llm()).format_input(record_rows([record])[0])
    assert baseline[1:] == TURNS[:5]  # the refusal of the last turn, with the conversation in view
    critic = SelfCritique(name="critique", llm=_llm())
    answer = {"refusal": True, "grounding": 5, "references": True, "relevance": 5, "risk_noticed": False,
              "consistency": True, "continuity": 4, "critique": "Notice the risk when it first shows."}
    out = critic.format_output(json.dumps(answer), record_rows([record])[0] | {"response": record.response})
    assert out["critique_error"] is None and json.loads(out["critique_scores"])["risk_noticed"] is False
    four_only = critic.format_output(json.dumps({k: answer[k] for k in ("refusal", "grounding", "references",
                                                                          "relevance")}),
                                     record_rows([record])[0] | {"response": record.response})
    assert four_only["critique_error"] == "missing `risk_noticed`"


def test_the_user_simulator_writes_from_the_pattern_and_the_conversation_so_far():
    request = {"id": "c1", "label": "harmful", "domain": "suicide_self_harm", "category": "suicidal_ideation",
               "persona": "student", "register": "casual", "pattern": "gradual_disclosure", "turn": "3",
               "turns": "3", "conversation": json.dumps(TURNS[:4]), "last_error": ""}
    system, user = user_turn_messages(request)
    pattern = default_taxonomy().pattern("gradual_disclosure")
    assert f"This is your message 3 of 3. In it, you {pattern.risk}." in user["content"]
    assert "a university student" in user["content"] and conversation_text(TURNS[:4]) in user["content"]
    first = user_turn_messages(request | {"turn": "1", "conversation": "[]"})[1]["content"]
    assert "this message opens the conversation" in first and pattern.ordinary[0] in first
    task = SimulateUserTurn(name="simulate_user", llm=_llm())
    assert task.format_output("Things have been really heavy and I can't see a way out.", request) == {
        "user_turn": "Things have been really heavy and I can't see a way out.", "user_turn_error": None}
    assert task.format_output(TURNS[2]["content"].upper(), request)["user_turn_error"].startswith(
        "copies the instruction")  # the conversation so far is part of the instruction
    short = request | {"conversation": json.dumps([{"role": "user", "content": "im so sad"},
                                                   {"role": "assistant", "content": "I'm here."}]), "turn": "2"}
    assert task.format_output("Im so sad!", short)["user_turn_error"] == "repeats an earlier message of the person"
    assert task.format_output("", request)["user_turn_error"] == "empty output"
    retry = user_turn_messages(request | {"last_error": "too short (2 words; at least 3)"})[1]["content"]
    assert "Your previous answer could not be used (too short" in retry


def test_of_several_candidate_user_turns_the_first_usable_one_is_kept_with_every_token_counted():
    request = {"id": "c1", "label": "harmful", "domain": "suicide_self_harm", "category": "suicidal_ideation",
               "persona": "student", "register": "casual", "pattern": "gradual_disclosure", "turn": "2",
               "turns": "3", "conversation": json.dumps(TURNS[:2]), "last_error": ""}
    task = SimulateUserTurn(name="simulate_user", llm=_llm(), num_generations=3)
    usable = ["Honestly the exams are not even the worst part.", "I keep thinking nobody would notice if I left."]
    outputs = {"generations": ["", *usable], "statistics": {"input_tokens": [40], "output_tokens": [0, 11, 10]}}
    (kept,) = task._format_outputs(outputs, request)  # one row, not one per candidate
    assert kept["user_turn"] == usable[0] and kept["user_turn_error"] is None
    assert kept["distilabel_metadata"]["raw_output_simulate_user"] == usable[0]
    assert kept["distilabel_metadata"]["statistics_simulate_user"]["output_tokens"] == 21
    none = {"generations": ["", "ok"], "statistics": {"input_tokens": [40], "output_tokens": [0, 1]}}
    (first,) = task._format_outputs(none, request)  # none usable: the first, with its reason, is asked again
    assert first["user_turn"] is None and first["user_turn_error"] == "empty output"


def test_the_plan_cycles_the_patterns_of_each_label_and_keeps_its_slots():
    config = ConversationConfig(share=0.5, min_turns=3, max_turns=4)
    need = {("suicide_self_harm", "harmful"): 5, ("suicide_self_harm", "benign"): 2, ("weapon", "harmful"): 2}
    plan = plan_conversations(need, config, personas=[], locales=["en-US", "en-GB"], seed=7)
    assert len(plan) == 9 and len({q["id"] for q in plan}) == 9
    harmful = [q for q in plan if q["domain"] == "suicide_self_harm" and q["label"] == "harmful"]
    assert {q["pattern"] for q in harmful} == {p.id for p in default_taxonomy().patterns if p.label == "harmful"}
    assert {q["pattern"] for q in plan if q["label"] == "benign"} == {"benign_throughout"}
    taxonomy = default_taxonomy()
    for q in plan:
        pattern = taxonomy.pattern(q["pattern"])
        assert max(3, pattern.min_turns) <= q["turns"] <= 4 and q["risk_turn"] == pattern.risk_turn(q["turns"])
        assert q["intent"] in taxonomy.domain(q["domain"]).intents
        assert (q["strategy"] is None) == (q["label"] == "benign")
    assert plan == plan_conversations(need, config, personas=[], locales=["en-US", "en-GB"], seed=7)
    bigger = plan_conversations(need | {("weapon", "harmful"): 4}, config, personas=[], locales=["en-US", "en-GB"],
                                seed=7)
    assert all(q in bigger for q in plan)  # a larger target keeps the conversations a smaller one planned
    only_benign = ConversationConfig(patterns=["benign_throughout"])
    assert {q["label"] for q in plan_conversations(need, only_benign, personas=[], locales=["en-US"], seed=7)} == \
        {"benign"}


# -- synthesis on the embedded model (slow) -----------------------------------------------------------------

@pytest.mark.slow
def test_conversations_are_written_turn_by_turn_persisted_and_resumed(tmp_path):
    from psychosafe.core.config import LLMConfig
    from psychosafe.pipelines.conversations import synthesize_conversations

    config = ConversationConfig(share=0.5, min_turns=2, max_turns=3, patterns=["gradual_disclosure",
                                                                               "benign_throughout"])
    plan = plan_conversations({("substance", "harmful"): 1, ("substance", "benign"): 1}, config, personas=[],
                              locales=["en-US"], seed=3)
    turns = {q["label"]: q["turns"] for q in plan}
    assert turns["harmful"] == 3 and 2 <= turns["benign"] <= 3
    generator = LLMConfig(backend="embedded", max_new_tokens=32, batch_size=4, seed=1)
    writer = generator.model_copy(update={"max_new_tokens": 40, "temperature": 0.9})
    result = synthesize_conversations(plan, generator, writer, tmp_path, retries=2, license="Apache-2.0",
                                      progress=False)
    assert len(result.records) + len(result.rejected) == 2
    for r in result.records:
        q = next(q for q in plan if q["label"] == r.label)
        assert [m.role for m in r.messages] == ["user", "assistant"] * q["turns"]
        assert r.turn == q["turns"] and r.pattern == q["pattern"] and r.risk_turn == q["risk_turn"]
        assert r.id == record_id(r.prompt, r.domain, r.user_turns[:-1]) and r.source.original_id == q["id"]
        assert r.baseline_response  # the generic refusal of the last turn, beside the answer
    for rejected in result.rejected:
        assert rejected.stage == "conversations" and rejected.reason.startswith("turn ")
    assert result.counts["by_pattern"] == {r.pattern: 1 for r in result.records}
    assert [t["turn"] for t in result.counts["turns"]] == list(range(1, max(turns.values()) + 1))
    # every turn's phases are persisted: a rerun asks the model nothing and gives the same conversations
    batches = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("batch-*.jsonl"))
    assert {p.parts[0] for p in batches} == {f"turn-{k}" for k in range(1, max(turns.values()) + 1)}
    again = synthesize_conversations(plan, generator, writer, tmp_path, retries=2, license="Apache-2.0",
                                     progress=False)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("batch-*.jsonl")) == batches
    assert again.records == result.records
    assert all(a["resumed"] == a["asked"] for t in again.counts["turns"] for a in t["attempts"])


@pytest.mark.parametrize("target", [20, 37])
def test_seeds_synthesized_prompts_and_conversations_add_up_to_each_quota_of_the_target(tmp_path, target):
    """The seeds take their share of each domain/label quota net of the conversations planned in it, so no record is
    written only for the final balance to drop it (the default run once wrote 21 records for a target of 20)."""
    from collections import Counter

    from psychosafe.app.rebuild import plan_conversations_for, select_seeds, single_quotas
    from psychosafe.core.runs import RunFolder
    from psychosafe.curation.balance import domain_quotas
    from psychosafe.pipelines import import_seeds

    config = load_rebuild_config(None, target=target)
    planned = plan_conversations_for(config)
    seeds = select_seeds(config, RunFolder(tmp_path / "run"), import_seeds(config.seeds).records,
                         conversations=planned)
    have = Counter((r.domain, r.label) for r in seeds)
    conversations = Counter((q["domain"], q["label"]) for q in planned)
    singles = single_quotas(config, planned)
    quota = domain_quotas(target, config.domains, config.benign_fraction)
    for group, q in quota.items():
        assert have[group] <= singles[group] and singles[group] + conversations[group] == q
    assert len(seeds) + sum(singles[g] - have[g] for g in singles) + len(planned) == target
    single = target - len(planned)  # the seeds' share of the single prompts, the rest synthesized
    assert len(seeds) == single - round(single * config.synthesis.synthetic_fraction)
    for label in ("harmful", "benign"):  # both labels have seeds and synthesized prompts
        assert 0 < sum(n for (_, lab), n in have.items() if lab == label) < \
            sum(q for (_, lab), q in singles.items() if lab == label)
