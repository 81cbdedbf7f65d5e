"""One conversation from synthesis to eval, on the embedded SmolLM2 and a real local Argilla server (argilla-server +
osmem + Redis, started by psychosafe.app.serve.argilla): the user simulator and the generator write it turn by turn,
curation keeps it whole, review shows it in the chat field of an Argilla record, an SFT step trains on it with the
loss on the assistant's tokens only (asserted on the labels TRL builds), and eval has the model answer its user turns
turn by turn and scores the eval folder per pattern and turn."""

import json

import datasets
import pytest

from psychosafe.app.serve import argilla as server_script
from psychosafe.core.config import ConversationConfig, LLMConfig, RebuildConfig
from psychosafe.core.runs import RunFolder
from psychosafe.curation import curate
from psychosafe.curation.review import ReviewConfig, push_review
from psychosafe.eval import EvalConfig, eval_folder, generate_run, judge_run, load_prompt_set
from psychosafe.eval.records import GENERATED, load_eval
from psychosafe.pipelines.conversations import plan_conversations, synthesize_conversations
from psychosafe.train import train_run

pytestmark = pytest.mark.slow

PATTERN = "gradual_disclosure"


def test_one_conversation_from_synthesis_to_an_eval_scored_per_pattern(tmp_path, require_service):
    require_service("the Argilla server", server_script.server_venv)
    run = RunFolder(tmp_path / "run")

    # synthesis: three user turns written by the user simulator, each answered by the generator in order
    config = ConversationConfig(share=1.0, min_turns=3, max_turns=3, patterns=[PATTERN])
    plan = plan_conversations({("suicide_self_harm", "harmful"): 1}, config, personas=[], locales=["en-US"], seed=5)
    generator = LLMConfig(backend="embedded", max_new_tokens=48, batch_size=4, seed=1)
    writer = generator.model_copy(update={"max_new_tokens": 40, "temperature": 0.9})
    synthesized = synthesize_conversations(plan, generator, writer, run.synthesized / "conversations", retries=2,
                                           license="Apache-2.0", progress=False)
    (talk,) = synthesized.records
    assert [m.role for m in talk.messages] == ["user", "assistant"] * 3
    assert (talk.pattern, talk.risk_turn, talk.turn) == (PATTERN, 3, 3)

    # curation keeps it, every turn of it, in the curated dataset's `messages`
    rebuild = RebuildConfig.model_validate({
        "target": 1, "domains": ["suicide_self_harm"], "benign_fraction": 0, "locales": ["en-US"],
        "curation": {"on_refusal_mismatch": "flag", "min_scores": {},
                     "splits": {"validation_per_domain": 0, "test_per_domain": 0}}})
    curate([talk], rebuild, run)
    (row,) = datasets.load_from_disk(str(run.curated))["train"].to_list()
    assert row["id"] == talk.id and row["messages"] == [m.model_dump() for m in talk.messages]
    assert row["prompt"] == talk.prompt and row["response"] == talk.response and row["pattern"] == PATTERN

    # review: the Argilla record shows the conversation in its chat field
    import argilla as rg

    state = tmp_path / "argilla-state"
    server = server_script.start(state, port=0, api_key="test-owner-key-0123456789")
    try:
        review = ReviewConfig(api_url=server["url"], api_key=server["api_key"], dataset="conversation-e2e")
        pushed = push_review(run, review, progress=False)
        assert pushed["counts"]["created"] == 1 and pushed["counts"]["harmful"] == 1
        owner = rg.Argilla(api_url=server["url"], api_key=server["api_key"])
        queue = owner.datasets(name="conversation-e2e-harmful", workspace=review.workspace)
        assert queue.settings.fields["conversation"].type == "chat"
        (stored,) = list(queue.records(with_suggestions=True))
        chat = [m if isinstance(m, dict) else m.model_dump() for m in stored.fields["conversation"]]
        assert str(stored.id) == talk.id and chat == row["messages"]
        assert stored.metadata["pattern"] == PATTERN
        assert {s.question_name for s in stored.suggestions} >= {"strategy"}
        again = push_review(run, review, progress=False)  # read back as pushed: nothing to update
        assert again["counts"]["unchanged"] == 1
    finally:
        server_script.stop(state)

    # an SFT step on the curated conversation: the loss falls on the assistant's turns and on nothing else
    from transformers import AutoTokenizer

    from psychosafe.core.backends.embedded import ensure_smollm2
    from psychosafe.train import TrainConfig, load_train_config

    train = load_train_config().model_dump()
    train["data"] |= {"system_prompt": "v0", "eval_split": None}
    train["training"] |= {"max_length": 1024, "per_device_train_batch_size": 1, "gradient_accumulation_steps": 1,
                          "max_steps": 1, "logging_steps": 1, "warmup_steps": 0}
    from transformers import TrainerCallback

    class Labels(TrainerCallback):
        """Keeps the rows the trainer trains on, with the labels TRL built (-100: no loss on that token)."""

        rows: list | None = None

        def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
            self.rows = [train_dataloader.dataset[i] for i in range(len(train_dataloader.dataset))]

    labels = Labels()
    trained = train_run(TrainConfig.model_validate(train), run.path, callbacks=[labels])
    assert trained.summary["steps"] == 1 and trained.summary["first_train_loss"] > 0
    (example,) = labels.rows
    tokenizer = AutoTokenizer.from_pretrained(str(ensure_smollm2()))
    runs, current = [], []
    for token, label in zip(example["input_ids"], example["labels"]):
        if label != -100:
            assert label == token
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    runs += [current] if current else []
    # each run of trained tokens is one assistant turn and its end-of-turn marker, in order; no system or user token
    assert [tokenizer.decode(r) for r in runs] == [f"{text}<|im_end|>\n" for text in talk.assistant_turns]
    untrained = tokenizer.decode([t for t, label in zip(example["input_ids"], example["labels"]) if label == -100])
    assert all(text in untrained for text in talk.user_turns)
    assert not any(text in untrained for text in talk.assistant_turns)

    # eval: the model under test answers the conversation's user turns, turn by turn, then the judge scores it
    prompts = load_prompt_set(str(run.curated), split="train")
    assert [r.user_turns for r in prompts] == [talk.user_turns] and prompts[0].assistant_turns == []
    under_test = LLMConfig(backend="embedded", max_new_tokens=24, batch_size=4, seed=2, temperature=0)
    judge = LLMConfig(backend="embedded", max_new_tokens=96, batch_size=4, seed=3, temperature=0)
    cfg = EvalConfig(generator=under_test, judges=[judge], variant="v0", judge_retries=1, bootstrap_resamples=200)
    folder = eval_folder(run.path, "conversations")
    generate_run(prompts, cfg, folder, progress=False)
    (answered,) = load_eval(folder.path / GENERATED)
    assert answered.user_turns == talk.user_turns and len(answered.assistant_turns) == 3
    # the answer to turn 3 was asked with the model's own answers to turns 1 and 2 in view, not the corpus's
    (turn3,) = [json.loads(line) for p in (folder.path / "generation" / "turn-3" / "batches").glob("*.jsonl")
                for line in p.read_text().splitlines()]
    assert [t["content"] for t in json.loads(turn3["earlier_turns"]) if t["role"] == "assistant"] == \
        answered.assistant_turns[:2]
    judge_run(folder, cfg, progress=False)
    summary = json.loads((folder.path / "summary.json").read_text())
    by_pattern = summary["patterns"][PATTERN]
    assert by_pattern["n"] == 1 and by_pattern["user_turns"] == {"3": 1}
    assert set(by_pattern["per_turn"]) <= {"1", "2", "3"} and by_pattern["judged"] <= 1
    (judged,) = load_eval(folder.path / "judged")
    assert len(judged.turn_scores) == 3 and judged.turn_scores[-1] == judged.scores
    assert "## Conversations: pass rates per pattern and turn" in (folder.path / "report.md").read_text()
    assert (folder.path / "patterns.png").is_file()
