"""distilabel tasks. Each owns its prompt (`format_input`) and its parsing (`format_output`)."""

from __future__ import annotations

import json
from typing import Any

from distilabel.steps.tasks import Task

from psychosafe.schemas import Record, normalize_prompt

from .parsing import parse_critique, parse_generic_refusal, parse_user_prompt
from .persist import output_tokens
from .templates import (
    critique_messages,
    generic_refusal_pattern,
    generic_refusal_system_prompt,
    json_answer,
    regex_answer,
    response_system_prompt,
    revision_messages,
    scores_json_schema,
    synthesis_messages,
    turn_dicts,
    user_turn_messages,
)

# The columns a synthesis request carries (pipelines/synthesis.py); "" where a control does not apply.
REQUEST_COLUMNS = ["id", "label", "domain", "secondary_domain", "category", "intent", "persona", "register", "length",
                   "ask_style", "contrast_type", "locale", "last_error"]
# The record columns the response, critique and revision tasks read (a conversation's earlier turns as JSON text).
RECORD_COLUMNS = ["id", "prompt", "label", "domain", "strategy", "locale", "earlier_turns", "pattern", "risk_turn"]


class KeepsEarlierMetadata:
    """For a task that follows another in one pipeline: distilabel replaces a row's `distilabel_metadata` with
    the current task's, which would lose the earlier task's raw output and token counts; merge them instead."""

    def _format_outputs(self, outputs, input=None):  # type: ignore[override]
        formatted = super()._format_outputs(outputs, input)  # type: ignore[misc]
        before = dict((input or {}).get("distilabel_metadata") or {})
        for row in formatted:
            row["distilabel_metadata"] = before | (row.get("distilabel_metadata") or {})
        return formatted


class ShapedAnswer:
    """For a task whose answer has a shape (rubric JSON, a one-line refusal): when its LLM constrains decoding
    row by row (`constrains_per_row`, psychosafe.core.backends), each input goes as distilabel's (chat, structured
    output) pair, so the model cannot leave the shape. The task still parses and validates every answer: an
    unconstrained backend, or an answer cut by the token limit, is caught there and retried."""

    def answer_shape(self, input: dict[str, Any]) -> dict:
        raise NotImplementedError

    def _format_inputs(self, inputs: list[dict[str, Any]]) -> list:  # type: ignore[override]
        chats = super()._format_inputs(inputs)  # type: ignore[misc]
        if not getattr(self.llm, "constrains_per_row", False):  # type: ignore[attr-defined]
            return chats
        return [(chat, self.answer_shape(input)) for chat, input in zip(chats, inputs)]


def record_rows(records: list[Record]) -> list[dict[str, str]]:
    """Records as the rows these tasks read: flat string columns, "" for a missing value (distilabel writes
    batches through pyarrow, which dislikes all-None columns), a conversation's earlier turns as JSON text."""
    return [{k: _as_text(getattr(r, k)) for k in RECORD_COLUMNS} for r in records]


def _as_text(value: Any) -> str:
    if isinstance(value, list):
        return json.dumps(turn_dicts(value), ensure_ascii=False) if value else ""
    return "" if value is None else str(value)


def _record(input: dict[str, Any]) -> Record:
    """The record a row describes (the inverse of `record_rows`, plus the row's response)."""
    data = {k: input[k] for k in RECORD_COLUMNS + ["response"] if input.get(k)}
    if "earlier_turns" in data:
        data["earlier_turns"] = json.loads(data["earlier_turns"])
    return Record.model_validate(data)


def earlier_turns_of(input: dict[str, Any]) -> list[dict[str, str]]:
    """A row's earlier turns (record_rows writes them as JSON text) as chat dicts; [] for a single prompt."""
    return json.loads(input.get("earlier_turns") or "[]")


class PsychoSafeResponse(Task):
    """The response to one prompt: a PsychoSafe refusal for harmful prompts, a helpful answer for benign
    ones. Input rows are records (as dicts) with their strategy already chosen."""

    @property
    def inputs(self) -> list[str]:
        return RECORD_COLUMNS

    def format_input(self, input: dict[str, Any]) -> list[dict[str, str]]:
        record = _record(input)  # a conversation: the turns so far, `prompt` the one to answer
        return [{"role": "system", "content": response_system_prompt(record)}, *earlier_turns_of(input),
                {"role": "user", "content": record.prompt}]

    @property
    def outputs(self) -> list[str]:
        return ["response", "model_name"]

    def format_output(self, output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
        text = (output or "").strip()
        return {"response": text or None}


class SynthesizePrompt(Task):
    """One user prompt for one synthesis request (a taxonomy cell and a mix of diversity controls). The answer
    is validated here: `synthesis_error` says why it cannot be used (empty, refusal, copy of the instruction)."""

    @property
    def inputs(self) -> list[str]:
        return REQUEST_COLUMNS

    def format_input(self, input: dict[str, Any]) -> list[dict[str, str]]:
        return synthesis_messages(input)

    @property
    def outputs(self) -> list[str]:
        return ["prompt", "synthesis_error", "model_name"]

    def format_output(self, output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
        instruction = "\n".join(m["content"] for m in synthesis_messages(input or {}))
        try:
            return {"prompt": parse_user_prompt(output, instruction), "synthesis_error": None}
        except ValueError as exc:
            return {"prompt": None, "synthesis_error": str(exc)}


# The columns a conversation's user-turn request carries (pipelines/conversations.py): the plan's choices, the turn
# to write, and the conversation so far as JSON turns.
USER_TURN_COLUMNS = ["id", "label", "domain", "category", "persona", "register", "pattern", "turn", "turns",
                     "conversation", "last_error"]


class SimulateUserTurn(Task):
    """The user simulator: the person's next message in a planned conversation, from the persona and the pattern's
    brief for this turn, in view of the conversation so far. The answer is validated here: `user_turn_error` says
    why it cannot be used (empty, a refusal, a copy of the instruction, a repeat of the person's earlier message).
    Asked for several candidates (`num_generations`), the row keeps the first usable one (else the first), with
    the output tokens of them all."""

    def _format_outputs(self, outputs, input=None):  # type: ignore[override]
        candidates = super()._format_outputs(outputs, input)
        kept = next((c for c in candidates if c.get("user_turn")), candidates[0])
        stats = (kept.get("distilabel_metadata") or {}).get(f"statistics_{self.name}")
        if len(candidates) > 1 and isinstance(stats, dict):
            stats["output_tokens"] = sum(output_tokens(c, self.name) for c in candidates)
        return [kept]

    @property
    def inputs(self) -> list[str]:
        return USER_TURN_COLUMNS

    def format_input(self, input: dict[str, Any]) -> list[dict[str, str]]:
        return user_turn_messages(input)

    @property
    def outputs(self) -> list[str]:
        return ["user_turn", "user_turn_error", "model_name"]

    def format_output(self, output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
        input = input or {}
        instruction = "\n".join(m["content"] for m in user_turn_messages(input))
        try:
            text = parse_user_prompt(output, instruction)
        except ValueError as exc:
            return {"user_turn": None, "user_turn_error": str(exc)}
        said = {normalize_prompt(t["content"]) for t in json.loads(input.get("conversation") or "[]")
                if t["role"] == "user"}
        if normalize_prompt(text) in said:
            return {"user_turn": None, "user_turn_error": "repeats an earlier message of the person"}
        return {"user_turn": text, "user_turn_error": None}


class GenericRefusal(KeepsEarlierMetadata, ShapedAnswer, Task):
    """The baseline stored beside every response: the generic refusal of a cautious assistant."""

    def answer_shape(self, input: dict[str, Any]) -> dict:
        return regex_answer(generic_refusal_pattern())

    @property
    def inputs(self) -> list[str]:
        return ["prompt"]

    def format_input(self, input: dict[str, Any]) -> list[dict[str, str]]:
        # a conversation's baseline refuses its last turn, with the turns before it in view
        return [{"role": "system", "content": generic_refusal_system_prompt()}, *earlier_turns_of(input),
                {"role": "user", "content": input["prompt"]}]

    @property
    def outputs(self) -> list[str]:
        return ["baseline_response", "baseline_error", "model_name"]

    def format_output(self, output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            return {"baseline_response": parse_generic_refusal(output), "baseline_error": None}
        except ValueError as exc:
            return {"baseline_response": None, "baseline_error": str(exc)}


class SelfCritique(ShapedAnswer, Task):
    """Scores a draft response against rubric.yaml and says what to improve, as JSON. `critique_scores` is the
    validated scores as JSON text (None when the answer did not parse; `critique_error` says why)."""

    def answer_shape(self, input: dict[str, Any]) -> dict:
        return json_answer(scores_json_schema(input["label"], with_critique=True,
                                              conversation=bool(input.get("earlier_turns"))))

    @property
    def inputs(self) -> list[str]:
        return RECORD_COLUMNS + ["response", "last_error"]

    def format_input(self, input: dict[str, Any]) -> list[dict[str, str]]:
        return critique_messages(_record(input), input.get("last_error"))

    @property
    def outputs(self) -> list[str]:
        return ["critique_scores", "critique", "critique_error", "model_name"]

    def format_output(self, output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
        input = input or {}
        try:
            scores, critique = parse_critique(output, input.get("label", "harmful"),
                                              conversation=bool(input.get("earlier_turns")))
        except ValueError as exc:
            return {"critique_scores": None, "critique": None, "critique_error": str(exc)}
        return {"critique_scores": json.dumps(scores), "critique": critique, "critique_error": None}


class ReviseResponse(Task):
    """Rewrites a response following its critique, under the same instructions as the first draft."""

    @property
    def inputs(self) -> list[str]:
        return RECORD_COLUMNS + ["response", "critique"]

    def format_input(self, input: dict[str, Any]) -> list[dict[str, str]]:
        return revision_messages(_record(input), input["critique"])

    @property
    def outputs(self) -> list[str]:
        return ["revised_response", "revise_error", "model_name"]

    def format_output(self, output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
        text = (output or "").strip()
        if not text:
            return {"revised_response": None, "revise_error": "empty output"}
        if input and text == (input.get("critique") or "").strip():
            return {"revised_response": None, "revise_error": "repeats the critique instead of a reply"}
        return {"revised_response": text, "revise_error": None}
