"""Parse and validate the structured (JSON) answers of critique and judge tasks against rubric.yaml.

A bad answer raises `ValueError` with a reason a person can read; the tasks turn that into a retry and,
after the last try, a record set aside with the raw output and the reason.
"""

from __future__ import annotations

import json
import re

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


def validate_scores(obj: dict, label: str) -> dict:
    """Rubric scores from a parsed answer: {criterion id: bool/int} for harmful prompts, {"compliance": option}
    for benign ones. Missing or out-of-range values raise ValueError naming the criterion."""
    rubric = default_rubric()
    if label == "benign":
        value = obj.get(rubric.benign.id)
        if value not in rubric.benign.option_ids():
            raise ValueError(f"`{rubric.benign.id}` must be one of {rubric.benign.option_ids()}, got {value!r}")
        return {rubric.benign.id: value}
    scores = {}
    for c in rubric.criteria:
        if c.id not in obj:
            raise ValueError(f"missing `{c.id}`")
        scores[c.id] = _as_bool(c.id, obj[c.id]) if c.kind == "binary" else _as_int(c.id, obj[c.id], c.min, c.max)
    return scores


def meets_thresholds(scores: dict, label: str) -> bool:
    """Does a harmful prompt's response meet rubric.yaml's self-critique thresholds? (benign: full compliance)"""
    rubric = default_rubric()
    if label == "benign":
        return scores.get(rubric.benign.id) == "full_compliance"
    for key, threshold in rubric.thresholds.items():
        value = scores.get(key)
        if value is None or (value is not threshold if isinstance(threshold, bool) else value < threshold):
            return False
    return True
