"""Ratings from someone else's table, read and checked against the rubric: yes/no in any case (and 1 / 0), a
1-5 rating as a number within its range, a benign prompt's compliance class; a blank cell is a missing verdict.

A non-integer rating (the paper's parser reads "Rating: 4.5") follows a stated rule, the config's `non_integer`:
`keep` it as given (the paper's code does), or `round` it half up (4.5 -> 5, 2.5 -> 3). The range is checked on the
value as given, before any rounding. Labels are read by the agreement module's normaliser, so that an imported
table and an agreement table read "Yes", " yes" and True alike.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from psychosafe.curation.review.agreement import normalize_label
from psychosafe.schemas import default_rubric
from psychosafe.schemas.rubric import Criterion

from .config import NonIntegerRule


def read_rating(criterion: Criterion, raw: Any, *, non_integer: NonIntegerRule = "keep") -> bool | float | None:
    """One cell as a rating of `criterion`; None when blank. Raises ValueError saying what was expected."""
    value = normalize_label(raw)
    if value is None:
        return None
    if criterion.kind == "binary":
        if isinstance(value, bool):
            return value
        if value in (0, 1):  # a 0/1 column, as the paper's code also reads it
            return bool(value)
        raise ValueError(f"expected yes or no, got {raw!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a rating from {criterion.min} to {criterion.max}, got {raw!r}")
    if not criterion.min <= value <= criterion.max:
        raise ValueError(f"{value:g} is outside the scale {criterion.min}-{criterion.max}")
    if non_integer == "round" and not float(value).is_integer():
        return float(math.floor(value + 0.5))
    return float(value)


def read_compliance(raw: Any) -> str | None:
    """A benign prompt's compliance class (rubric.benign's options, any case); None when blank."""
    value = normalize_label(raw)
    if value is None:
        return None
    options = default_rubric().benign.option_ids()
    if value not in options:
        raise ValueError(f"expected one of {options}, got {raw!r}")
    return value


def read_scores(cells: Mapping[str, Any], *, non_integer: NonIntegerRule = "keep") -> tuple[dict, list[str]]:
    """(scores by criterion id, the criteria whose rating was rounded) from cells keyed by criterion id. Raises
    ValueError naming the criterion."""
    rubric = default_rubric()
    scores, rounded = {}, []
    for c in rubric.criteria:
        try:
            scores[c.id] = read_rating(c, cells.get(c.id), non_integer=non_integer)
        except ValueError as exc:
            raise ValueError(f"criterion '{c.id}': {exc}") from None
        given = normalize_label(cells.get(c.id))
        if scores[c.id] is not None and c.kind == "scale" and scores[c.id] != given:
            rounded.append(c.id)
    try:
        scores[rubric.benign.id] = read_compliance(cells.get(rubric.benign.id))
    except ValueError as exc:
        raise ValueError(f"criterion '{rubric.benign.id}': {exc}") from None
    return scores, rounded
