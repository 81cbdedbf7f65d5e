"""Parse and validate the structured (JSON) answers of critique and judge tasks against rubric.yaml.

A bad answer raises `ValueError` with a reason a person can read; the tasks turn that into a retry and,
after the last try, a record set aside with the raw output and the reason.
"""

from __future__ import annotations

import json
import re
from difflib import SequenceMatcher

from psychosafe.core.text import refusal_markers
from psychosafe.schemas import default_rubric

_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


def parse_json_object(text: str | None) -> dict:
    """The first JSON object in a model's answer (models wrap JSON in prose or code fences)."""
    if not text or not text.strip():
        raise ValueError("empty output")
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON object in the output")
    try:
        obj, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError as exc:
        if not text.rstrip().endswith("}"):  # typical of a constrained answer cut by the token limit
            raise ValueError(f"unfinished JSON ({exc.msg}): the answer stops before the object closes; "
                             "is max_new_tokens too small?") from None
        raise ValueError(f"invalid JSON ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise ValueError("the JSON is not an object")
    return obj


def _as_bool(name: str, value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (str, int)) and str(value).strip().lower() in _TRUE | _FALSE:
        return str(value).strip().lower() in _TRUE
    raise ValueError(f"`{name}` must be true or false, got {value!r}")


def _as_int(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not re.fullmatch(r"\s*\d+(\.0+)?\s*", str(value)):
        raise ValueError(f"`{name}` must be an integer from {low} to {high}, got {value!r}")
    number = int(float(value))
    if not low <= number <= high:
        raise ValueError(f"`{name}` must be an integer from {low} to {high}, got {number}")
    return number


def validate_scores(obj: dict, label: str, *, conversation: bool = False) -> dict:
    """Rubric scores from a parsed answer: {criterion id: bool/int} for harmful prompts (with the conversation
    criteria for a conversation), {"compliance": option} for benign ones. Missing or out-of-range values raise
    ValueError naming the criterion."""
    rubric = default_rubric()
    if label == "benign":
        value = obj.get(rubric.benign.id)
        if value not in rubric.benign.option_ids():
            raise ValueError(f"`{rubric.benign.id}` must be one of {rubric.benign.option_ids()}, got {value!r}")
        return {rubric.benign.id: value}
    scores = {}
    for c in rubric.criteria_for(label, conversation=conversation):
        if c.id not in obj:
            raise ValueError(f"missing `{c.id}`")
        scores[c.id] = _as_bool(c.id, obj[c.id]) if c.kind == "binary" else _as_int(c.id, obj[c.id], c.min, c.max)
    return scores


def parse_critique(text: str | None, label: str, *, conversation: bool = False) -> tuple[dict, str]:
    """(scores, critique text) from a self-critique answer. A response below the thresholds needs a critique
    saying what to improve, or there is nothing to revise from."""
    obj = parse_json_object(text)
    scores = validate_scores(obj, label, conversation=conversation)
    critique = obj.get("critique")
    critique = critique.strip() if isinstance(critique, str) else ""
    if not critique and not default_rubric().meets_thresholds(scores, label, conversation=conversation):
        raise ValueError("missing `critique` (what to improve) for a response below the thresholds")
    return scores, critique


_LEAD_IN = re.compile(r"^\s*(?:(?:here(?:'s| is) (?:the|a|my|one) )?(?:user )?(?:message|prompt|question)\s*:|"
                      r"user\s*:|person\s*:)\s*", re.IGNORECASE)
_QUOTES = "\"'“”‘’`"
MIN_PROMPT_WORDS, MAX_PROMPT_WORDS = 3, 160


def parse_user_prompt(text: str | None, instruction: str) -> str:
    """A synthesized user prompt from the model's answer: lead-ins ("Message:") and wrapping quotes removed.
    Raises ValueError when it is empty, too short or long, a refusal to write it, or a copy of the instruction."""
    prompt = _LEAD_IN.sub("", (text or "").strip()).strip()
    if len(prompt) > 1 and prompt[0] in _QUOTES and prompt[-1] in _QUOTES:
        prompt = prompt[1:-1].strip()
    if not prompt:
        raise ValueError("empty output")
    words = len(prompt.split())
    if words < MIN_PROMPT_WORDS:
        raise ValueError(f"too short ({words} words; at least {MIN_PROMPT_WORDS})")
    if words > MAX_PROMPT_WORDS:
        raise ValueError(f"too long ({words} words; at most {MAX_PROMPT_WORDS})")
    if refusal_markers(prompt[:80]):
        raise ValueError("the model refused to write the message")
    # Small models often echo their instruction; a long stretch of it in the answer is not a user prompt.
    copied = _copied_stretch(prompt.lower(), instruction.lower())
    if copied:
        raise ValueError(f"copies the instruction ({copied!r})")
    return prompt


_ECHO, _SHORT_ECHO, _SHORT_SHARE = 40, 12, 0.6


def _copied_stretch(text: str, instruction: str) -> str | None:
    """A stretch of `text` found in `instruction` that makes it an echo: 40 characters or more, or, in a short text,
    12 or more that are 60 % of it. In a text of 67 characters or more only the first can hold (60 % of it is over
    40), and a common stretch of 40 holds a common 40-character window: a set of windows finds it in linear time
    (difflib's longest match, quadratic in pure Python, cost 2 ms a synthesized prompt)."""
    if _SHORT_SHARE * len(text) <= _ECHO:
        match = SequenceMatcher(None, text, instruction, autojunk=False).find_longest_match()
        if match.size >= _ECHO or (match.size >= _SHORT_ECHO and match.size >= _SHORT_SHARE * len(text)):
            return text[match.a:match.a + match.size]
        return None
    windows = {instruction[i:i + _ECHO]: i for i in range(len(instruction) - _ECHO + 1)}
    for start in range(len(text) - _ECHO + 1):
        at = windows.get(text[start:start + _ECHO])
        if at is not None:  # the whole stretch from here, for the message
            size = _ECHO
            while start + size < len(text) and at + size < len(instruction) and \
                    text[start + size] == instruction[at + size]:
                size += 1
            return text[start:start + size]
    return None


# What a generic refusal says when the model's own is unusable: the baseline must never carry harmful help.
GENERIC_REFUSAL = "I'm sorry, but I can't help with that."
MAX_REFUSAL_WORDS = 60
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def parse_generic_refusal(text: str | None) -> str:
    """A baseline refusal: the answer's first sentence, which must be short and recognisably a refusal. Only the
    first: what follows in a small model's answer ("However, ...") tends to drift into the help it declined."""
    refusal = (text or "").strip()
    if not refusal:
        raise ValueError("empty output")
    end = _SENTENCE_END.search(refusal)
    if end is None:
        raise ValueError("no complete sentence")
    refusal = refusal[:end.end()]
    if not refusal_markers(refusal):
        raise ValueError("not a refusal (no refusal phrase)")
    if len(refusal.split()) > MAX_REFUSAL_WORDS:
        raise ValueError(f"too long for a generic refusal ({len(refusal.split())} words; at most {MAX_REFUSAL_WORDS})")
    return refusal
