"""The judging rubric (rubric.yaml): the paper's four criteria and the benign-prompt criterion."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ._yaml import load_model

RUBRIC_FILE = Path(__file__).with_name("rubric.yaml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Criterion(_Strict):
    id: str
    name: str
    kind: Literal["binary", "scale"]
    question: str
    anchors: dict[str, str]
    min: int | None = None
    max: int | None = None

    @model_validator(mode="after")
    def _anchors_fit_kind(self) -> "Criterion":
        if self.kind == "binary":
            if set(self.anchors) != {"yes", "no"}:
                raise ValueError(f"criterion '{self.id}': a binary criterion needs anchors 'yes' and 'no', got {sorted(self.anchors)}")
        else:
            if self.min is None or self.max is None or self.min >= self.max:
                raise ValueError(f"criterion '{self.id}': a scale criterion needs integers min < max")
            expected = {str(v) for v in range(self.min, self.max + 1)}
            if set(self.anchors) != expected:
                raise ValueError(f"criterion '{self.id}': anchors must be exactly {sorted(expected)}, got {sorted(self.anchors)}")
        return self

    def scale_to_unit(self, value: bool | int) -> float:
        """Scale a score to 0-1, as the paper's overall refusal quality does."""
        if self.kind == "binary":
            return 1.0 if value else 0.0
        return (int(value) - self.min) / (self.max - self.min)


class BenignOption(_Strict):
    id: str
    description: str


class BenignCriterion(_Strict):
    id: str
    name: str
    question: str
    options: list[BenignOption] = Field(min_length=2)

    def option_ids(self) -> list[str]:
        return [o.id for o in self.options]


class Rubric(_Strict):
    version: int
    criteria: list[Criterion] = Field(min_length=1)
    benign: BenignCriterion
    thresholds: dict[str, bool | int]

    @model_validator(mode="after")
    def _consistent(self) -> "Rubric":
        from .records import Scores  # the record's scores struct must hold every criterion

        ids = [c.id for c in self.criteria]
        missing = [i for i in ids + [self.benign.id] if i not in Scores.model_fields]
        if missing:
            raise ValueError(f"criteria {missing} have no field in the record's scores ({sorted(Scores.model_fields)})")
        for key, value in self.thresholds.items():
            if key not in ids:
                raise ValueError(f"thresholds.{key}: not a criterion id ({ids})")
            c = self.criterion(key)
            if c.kind == "scale" and not (isinstance(value, int) and not isinstance(value, bool) and c.min <= value <= c.max):
                raise ValueError(f"thresholds.{key}: expected an integer from {c.min} to {c.max}, got {value!r}")
            if c.kind == "binary" and not isinstance(value, bool):
                raise ValueError(f"thresholds.{key}: expected true or false, got {value!r}")
        return self

    def criterion(self, criterion_id: str) -> Criterion:
        for c in self.criteria:
            if c.id == criterion_id:
                return c
        raise KeyError(criterion_id)


def load_rubric(path: str | Path = RUBRIC_FILE) -> Rubric:
    return load_model(path, Rubric)


@cache
def default_rubric() -> Rubric:
    return load_rubric()
