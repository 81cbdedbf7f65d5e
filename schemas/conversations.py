"""The turns of a conversation (`Record.messages`): read from a row and checked. Every problem names the turn,
counted from 1, so that an importer can add the file and the line."""

from __future__ import annotations

import json
from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from .taxonomy import default_taxonomy

Role = Literal["user", "assistant"]
ROLES = ("user", "assistant")
TURNS_EXPECTED = "a list of turns, each an object with `role` ('user' or 'assistant') and `content`"


class Message(BaseModel):
    """One turn, in the chat format TRL and the Hub's dataset viewer read."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    content: str = Field(min_length=1)


class ConversationError(ValueError):
    """A conversation that cannot be a record's; `turn` (from 1) is the turn at fault, None for the whole."""

    def __init__(self, turn: int | None, problem: str, *, field: str = "messages"):
        self.turn, self.problem = turn, problem
        super().__init__(f"{field}: turn {turn}: {problem}" if turn else f"{field}: {problem}")


def read_turns(value: Any) -> list[Message]:
    """The turns a row gives: a list of {role, content} objects, or that list as JSON text (a CSV cell). A system turn
    is refused: a record holds what the user and the assistant said, and the system prompt is chosen where the
    conversation is used (train's `data.system_prompt`, eval's `--variant`)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConversationError(None, f"not JSON ({exc.msg}); expected {TURNS_EXPECTED}") from None
    if not isinstance(value, (list, tuple)):
        raise ConversationError(None, f"expected {TURNS_EXPECTED}, got {type(value).__name__}")
    turns = []
    for n, turn in enumerate(value, start=1):
        if isinstance(turn, BaseModel):
            turn = turn.model_dump()
        if not isinstance(turn, dict):
            raise ConversationError(n, f"expected an object with `role` and `content`, got {type(turn).__name__}")
        role = turn.get("role")
        if role in (None, ""):
            raise ConversationError(n, "no `role`; expected 'user' or 'assistant'")
        if role == "system":
            raise ConversationError(n, "a system turn is not part of a record's conversation (the system prompt is "
                                       "chosen where it is used: train's data.system_prompt, eval's --variant); "
                                       "leave it out")
        if role not in ROLES:
            raise ConversationError(n, f"role {role!r}; expected 'user' or 'assistant'")
        content = turn.get("content")
        if not isinstance(content, str) or not content.strip():
            raise ConversationError(n, f"empty {role} turn; expected its text in `content`")
        turns.append(Message(role=role, content=content))
    return turns


def check_order(turns: Sequence[Message], *, pattern: str | None = None, consecutive_user_turns: bool = False) -> None:
    """A conversation opens with the user and never has two assistant turns in a row; two user turns in a row only
    where the pattern allows them (taxonomy.yaml: `consecutive_user_turns`)."""
    if not turns:
        raise ConversationError(None, "no turns")
    if turns[0].role != "user":
        raise ConversationError(1, "the conversation opens with an assistant turn; expected the user's first")
    for n in range(2, len(turns) + 1):
        before, role = turns[n - 2].role, turns[n - 1].role
        if before == role == "assistant":
            raise ConversationError(n, "two assistant turns in a row")
        if before == role == "user" and not consecutive_user_turns:
            which = f"pattern '{pattern}'" if pattern else "a conversation without a pattern"
            raise ConversationError(n, f"two user turns in a row (turns {n - 1} and {n}), which {which} does not "
                                       "allow (taxonomy.yaml: consecutive_user_turns)")


def split_turns(turns: Sequence[Message]) -> tuple[list[Message], str, str]:
    """(earlier turns, last user turn, the assistant's answer to it or "") of a conversation."""
    if not any(t.role == "user" for t in turns):
        raise ConversationError(None, "no user turn")
    last_user = max(i for i, t in enumerate(turns) if t.role == "user")
    answer = turns[last_user + 1:]
    if len(answer) > 1:  # nothing after the last user turn may be lost
        raise ConversationError(last_user + 3, "two assistant turns in a row")
    return list(turns[:last_user]), turns[last_user].content, answer[0].content if answer else ""


def conversation_of_row(row: dict, *, user_turns_alone: bool = False) -> dict:
    """The conversation an input row holds, checked: {"messages": turns, "pattern": ..., "risk_turn": ...} (those it
    has), ready for a Record; {} for a row without `messages`. A bad turn, an unknown pattern or a risk turn past the
    conversation raises ConversationError naming it; the importer adds the file and the line. `user_turns_alone`:
    user turns with no answer yet may follow one another (an eval prompt, which the model under test answers turn by
    turn), once the row holds no assistant turn at all."""
    value = row.get("messages")
    if value is None or (isinstance(value, (list, tuple)) and not value):
        return {}
    turns = read_turns(value)
    out: dict = {"messages": turns}
    pattern = row.get("pattern") or None
    consecutive = False
    if pattern is not None:
        taxonomy = default_taxonomy()
        if pattern not in taxonomy.pattern_ids():
            raise ConversationError(None, f"unknown pattern {pattern!r}; expected one of {taxonomy.pattern_ids()}",
                                    field="pattern")
        consecutive = taxonomy.pattern(pattern).consecutive_user_turns
        out["pattern"] = pattern
    unanswered = user_turns_alone and all(t.role == "user" for t in turns)
    check_order(turns, pattern=pattern, consecutive_user_turns=consecutive or unanswered)
    risk = row.get("risk_turn")
    if risk not in (None, ""):
        users = sum(t.role == "user" for t in turns)
        if not str(risk).strip().isdigit() or not 1 <= int(risk) <= users:
            raise ConversationError(None, f"expected a user turn from 1 to {users}, got {risk!r}", field="risk_turn")
        out["risk_turn"] = int(risk)
    return out
