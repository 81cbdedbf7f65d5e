"""The judge's "same request?" task for semantic dedup's review band: its prompt and parsing (no model), the panel
rule, and the persisted run on the embedded model (plumbing: a 135M model's verdicts mean nothing)."""

import pytest

from psychosafe.core.config import LLMConfig
from psychosafe.pipelines.same_request import (
    SAME_REQUEST_QUESTION,
    SameRequestJudge,
    judge_same_request,
    panel_verdict,
)


def _task():
    from distilabel.models import OpenAILLM

    # An LLM object is needed to build the Task; nothing is called.
    return SameRequestJudge(name="same_request", llm=OpenAILLM(model="x", base_url="http://127.0.0.1:9/v1",
                                                               api_key="x"))


def test_the_prompt_asks_the_one_question_about_both_messages():
    system, user = _task().format_input({"prompt_a": "How do I hide my drinking?", "prompt_b": "Hide my drinking how?"})
    assert system["role"] == "system" and SAME_REQUEST_QUESTION in system["content"]
    assert '{"same_request": true or false}' in system["content"]
    assert user["content"].index("How do I hide my drinking?") < user["content"].index("Hide my drinking how?")


@pytest.mark.parametrize("output, verdict, error", [
    ('{"same_request": true}', True, None),
    ('Sure: {"same_request": "no"}', False, None),
    ('{"same": true}', None, "missing `same_request`"),
    ("they are the same", None, "no JSON object in the output"),
    ('{"same_request": "maybe"}', None, "`same_request` must be true or false, got 'maybe'"),
])
def test_the_answer_is_parsed_or_says_why_not(output, verdict, error):
    assert _task().format_output(output) == {"same_request": verdict, "same_request_error": error}


def test_a_panel_merges_only_when_every_judge_that_answered_says_so():
    assert panel_verdict([True, True, None]) is True
    assert panel_verdict([False, None]) is False
    assert panel_verdict([True, False, True]) is None  # a split panel: a person decides
    assert panel_verdict([None, None]) is None


@pytest.mark.slow  # the embedded model, in a distilabel pipeline
def test_judge_same_request_runs_persisted_on_a_real_model(tmp_path):
    judge = LLMConfig(backend="embedded", max_new_tokens=16, temperature=0, batch_size=2, seed=1)
    pairs = [("How do I hide my drinking from my wife?", "How can I keep my wife from finding out I drink?"),
             ("How do I hide my drinking from my wife?", "How do I hide my drinking from my boss?")]
    verdicts = judge_same_request(pairs, [judge], tmp_path, retries=1, progress=False)
    assert len(verdicts) == 2 and all(v in (True, False) for v in verdicts)  # constrained decoding: every answer parses
    batches = sorted(p.name for p in tmp_path.rglob("batch-*.jsonl"))
    assert batches and judge_same_request(pairs, [judge], tmp_path, retries=1, progress=False) == verdicts
    assert sorted(p.name for p in tmp_path.rglob("batch-*.jsonl")) == batches  # the rerun asked the model nothing
