"""A conversation as the tokens SFT trains on, with the loss mask on the assistant's turns.

The chat template renders the whole conversation once; each assistant turn's characters are found by rendering the
conversation up to that turn (with the generation prompt) and through it, so the mask covers exactly what the model
writes there: its text and the template's end-of-turn marker, never a system or user token. This works for any chat
template whose rendering of a conversation starts with its rendering of every shorter one; TRL's own route to a
multi-turn mask (`assistant_only_loss`) needs `{% generation %}` markers in the template, which most lack. The rows
go to TRL already tokenized (`input_ids`, `completion_mask`), and TRL applies the mask (`completion_only_loss`).
"""

from __future__ import annotations

from typing import Literal

LossOn = Literal["assistant_turns", "last_turn"]


class TemplateMismatch(ValueError):
    """The chat template renders a shorter conversation differently from the start of a longer one."""


def assistant_spans(messages: list[dict], tokenizer, *, loss_on: LossOn = "assistant_turns") -> tuple[str, list]:
    """(the rendered conversation, [(start, end) character span of each assistant turn trained on])."""
    def render(turns: list[dict], **kwargs) -> str:
        return tokenizer.apply_chat_template(turns, tokenize=False, **kwargs)

    text = render(messages)
    assistant = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    if loss_on == "last_turn":
        assistant = assistant[-1:]
    spans = []
    for i in assistant:
        before, through = render(messages[:i], add_generation_prompt=True), render(messages[:i + 1])
        if not (text.startswith(before) and text.startswith(through) and len(through) > len(before)):
            raise TemplateMismatch(f"the chat template renders the conversation up to turn {i + 1} differently from "
                                   "the start of the whole conversation, so the assistant's tokens cannot be found")
        spans.append((len(before), len(through)))
    return text, spans


def conversation_tokens(messages: list[dict], tokenizer, *, loss_on: LossOn = "assistant_turns") -> dict:
    """{"input_ids", "completion_mask"}: the rendered conversation's tokens, 1 where the loss falls (a token that
    starts inside an assistant turn trained on), 0 elsewhere."""
    if not getattr(tokenizer, "is_fast", False):
        raise TemplateMismatch("a fast tokenizer (tokenizer.json) is needed to place the assistant turns' tokens")
    text, spans = assistant_spans(messages, tokenizer, loss_on=loss_on)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = [int(any(start <= first < end for start, end in spans)) for first, _ in encoded["offset_mapping"]]
    return {"input_ids": list(encoded["input_ids"]), "completion_mask": mask}


def answer_start(mask: list[int]) -> int:
    """How many tokens come before the first one the loss falls on (all of them when there is none)."""
    return mask.index(1) if 1 in mask else len(mask)


def tokenized(rows, tokenizer, *, loss_on: LossOn = "assistant_turns"):
    """A dataset of `{"messages"}` rows as TRL's pre-tokenized rows (`input_ids`, `completion_mask`)."""
    return rows.map(lambda row: conversation_tokens(row["messages"], tokenizer, loss_on=loss_on),
                    remove_columns=rows.column_names)
