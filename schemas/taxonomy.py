"""The risk taxonomy (taxonomy.yaml): domains, categories, intents, intervention strategies, conversation patterns."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ._yaml import load_model

TAXONOMY_FILE = Path(__file__).with_name("taxonomy.yaml")
# The diversity controls of prompt synthesis, each a list of `Control` in the taxonomy.
CONTROLS = ("personas", "registers", "lengths", "ask_styles", "contrast_types")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Intent(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = Field(min_length=1)


class Strategy(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1)
    description: str = Field(min_length=1)


class Category(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = Field(min_length=1)


class Control(_Strict):
    """One value of a prompt-synthesis diversity control (a persona, register, length, ask style or
    benign contrast type): an id and the description the synthesis prompt uses."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = Field(min_length=1)


class DomainStrategy(_Strict):
    id: str
    intents: list[str] = Field(min_length=1)


class Domain(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    description: str
    keywords: list[str] = Field(min_length=1, description="topic words benign contrast prompts share with harmful ones")
    categories: list[Category] = Field(min_length=4)
    intents: list[str] = Field(min_length=1)
    strategies: list[DomainStrategy] = Field(min_length=1)

    def category_ids(self) -> list[str]:
        return [c.id for c in self.categories]


class Pattern(_Strict):
    """A conversation pattern: how the risk unfolds over the user's turns, and the brief the user simulator writes
    each turn from (pipelines/conversations.py)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    label: Literal["harmful", "benign"]
    risk_at: Literal["first", "last", "none"]
    min_turns: int = Field(2, ge=1, description="user turns at least")
    consecutive_user_turns: bool = False
    intents: list[str] = Field(min_length=1)
    ordinary: list[str] = Field(default_factory=list, description="briefs of the turns before the risk turn")
    risk: str | None = None
    after_risk: list[str] = Field(default_factory=list, description="briefs of the turns after the risk turn")

    @model_validator(mode="after")
    def _briefs_fit(self) -> "Pattern":
        if self.label == "benign":
            if self.risk_at != "none" or self.risk or self.after_risk:
                raise ValueError("a benign pattern has no risk: risk_at none, and no `risk` or `after_risk` briefs")
            if not self.ordinary:
                raise ValueError("a benign pattern needs `ordinary` briefs for its turns")
            return self
        if self.risk_at == "none" or not self.risk:
            raise ValueError("a harmful pattern needs risk_at (first or last) and a `risk` brief")
        if self.risk_at == "last" and not self.ordinary:
            raise ValueError("risk_at last needs `ordinary` briefs for the turns before it")
        if self.risk_at == "first" and not self.after_risk:
            raise ValueError("risk_at first needs `after_risk` briefs for the turns after it")
        if self.min_turns < 2:
            raise ValueError("a harmful pattern needs min_turns of 2 or more (a turn before or after the risk)")
        return self

    def risk_turn(self, turns: int) -> int | None:
        """The user turn, counted from 1, that carries the risk in a conversation of `turns` user turns."""
        return {"first": 1, "last": turns, "none": None}[self.risk_at]

    def brief(self, turn: int, turns: int) -> str:
        """What the user does in turn `turn` (from 1) of `turns`."""
        risk = self.risk_turn(turns)
        if risk is None or turn < risk:
            briefs, k = self.ordinary, turn - 1
        elif turn == risk:
            return self.risk
        else:
            briefs, k = self.after_risk, turn - risk - 1
        return briefs[min(k, len(briefs) - 1)]


class Taxonomy(_Strict):
    version: int
    intents: list[Intent] = Field(min_length=1)
    strategies: list[Strategy] = Field(min_length=1)
    domains: list[Domain] = Field(min_length=1)
    personas: list[Control] = Field(min_length=1)
    registers: list[Control] = Field(min_length=1)
    lengths: list[Control] = Field(min_length=1)
    ask_styles: list[Control] = Field(min_length=1)
    contrast_types: list[Control] = Field(min_length=1)
    patterns: list[Pattern] = Field(min_length=1)

    @model_validator(mode="after")
    def _references_resolve(self) -> "Taxonomy":
        intents = {i.id for i in self.intents}
        strategies = {s.id for s in self.strategies}
        for kind, ids in (("intent", [i.id for i in self.intents]), ("strategy", [s.id for s in self.strategies]),
                          ("domain", [d.id for d in self.domains]), ("pattern", [p.id for p in self.patterns]),
                          *((kind, [c.id for c in getattr(self, kind)]) for kind in CONTROLS)):
            dupes = sorted({x for x in ids if ids.count(x) > 1})
            if dupes:
                raise ValueError(f"duplicate {kind} id(s): {', '.join(dupes)}")
        for i, d in enumerate(self.domains):
            where = f"domains[{i}] ({d.id})"
            for intent in d.intents:
                if intent not in intents:
                    raise ValueError(f"{where}.intents: '{intent}' is not one of the intents {sorted(intents)}")
            for s in d.strategies:
                if s.id not in strategies:
                    raise ValueError(f"{where}.strategies: '{s.id}' is not one of the strategies {sorted(strategies)}")
                for intent in s.intents:
                    if intent not in d.intents:
                        raise ValueError(f"{where}.strategies ({s.id}): intent '{intent}' is not in the domain's "
                                         "intents")
            uncovered = [x for x in d.intents if not any(x in s.intents for s in d.strategies)]
            if uncovered:
                raise ValueError(f"{where}: no strategy covers the intent(s) {uncovered}")
        for i, p in enumerate(self.patterns):
            unknown = [x for x in p.intents if x not in intents]
            if unknown:
                raise ValueError(f"patterns[{i}] ({p.id}).intents: {unknown} are not among the intents "
                                 f"{sorted(intents)}")
        return self

    # -- lookups -------------------------------------------------------------------------------
    def domain_ids(self) -> list[str]:
        return [d.id for d in self.domains]

    def domain(self, domain_id: str) -> Domain:
        for d in self.domains:
            if d.id == domain_id:
                return d
        raise KeyError(f"unknown domain '{domain_id}'; expected one of {self.domain_ids()}")

    def strategy(self, strategy_id: str) -> Strategy:
        for s in self.strategies:
            if s.id == strategy_id:
                return s
        raise KeyError(f"unknown strategy '{strategy_id}'")

    def control(self, kind: str, control_id: str) -> Control:
        """A persona, register, length, ask style or contrast type by id (`kind` is one of CONTROLS)."""
        for c in getattr(self, kind):
            if c.id == control_id:
                return c
        raise KeyError(f"unknown {kind[:-1].replace('_', ' ')} '{control_id}'; expected one of "
                       f"{[c.id for c in getattr(self, kind)]}")

    def pattern_ids(self) -> list[str]:
        return [p.id for p in self.patterns]

    def pattern(self, pattern_id: str) -> Pattern:
        for p in self.patterns:
            if p.id == pattern_id:
                return p
        raise KeyError(f"unknown pattern '{pattern_id}'; expected one of {self.pattern_ids()}")

    def highest_risk(self, domain_ids: list[str]) -> str:
        """The domain a multi-domain prompt takes: the first in the taxonomy's risk order."""
        order = self.domain_ids()
        return min(domain_ids, key=order.index)

    def choose_strategy(self, domain_id: str, intent: str | None, key: str) -> str:
        """A strategy fitting the domain and intent, picked deterministically by `key` (the record id)
        so that a corpus spreads over the strategies that fit instead of reusing one."""
        domain = self.domain(domain_id)
        fitting = [s.id for s in domain.strategies if intent in s.intents] or [s.id for s in domain.strategies]
        digest = int(hashlib.sha256(key.encode()).hexdigest(), 16)
        return fitting[digest % len(fitting)]


def load_taxonomy(path: str | Path = TAXONOMY_FILE) -> Taxonomy:
    return load_model(path, Taxonomy)


@cache
def default_taxonomy() -> Taxonomy:
    return load_taxonomy()
