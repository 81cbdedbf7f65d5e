"""The review configuration (configs/review.yaml): which server, which queue, how answers are combined, and
which records are pushed."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from psychosafe.core.config import CONFIGS_DIR, EmbedderConfig, load_config

from .agreement import AggregationRule, KappaWeights

SelectionRule = Literal["all", "low_scores", "flagged", "sample"]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SelectionConfig(_Config):
    rules: list[SelectionRule] = Field(default_factory=lambda: ["all"], min_length=1,
                                       description="records any of these rules picks are pushed")
    sample_per_domain: int = Field(20, gt=0)
    seed: int = 42
    flags: list[str] = Field(default_factory=list, description=(
        "the `flagged` rule picks only records with one of these flag codes or groups (label_suspect, contact, "
        "duplicate; selection.FLAG_GROUPS); empty: any flag"))

    @model_validator(mode="after")
    def _flags_need_the_flagged_rule(self):
        if self.flags and "flagged" not in self.rules:
            raise ValueError(f"flags {self.flags} narrow the `flagged` rule: add flagged to rules (now {self.rules})")
        return self


class TrustConfig(_Config):
    """When the judge may decide a criterion without a person (curation.scores.JudgeTrust)."""

    min_kappa: float = Field(0.6, ge=-1, le=1, description="Cohen's kappa (judge vs annotators) a criterion needs")
    min_reviewed: int = Field(30, ge=1, description="reviewed records needed before any criterion is trusted")
    scale_weights: KappaWeights = Field("quadratic", description="kappa's weights on the 1-5 scales")


class ReviewConfig(_Config):
    api_url: str | None = None
    api_key: str | None = Field(None, description="prefer the environment variable named by api_key_env")
    api_key_env: str = "ARGILLA_API_KEY"
    workspace: str = Field("argilla", min_length=1)
    dataset: str = Field("psychosafe-review", pattern=r"^[A-Za-z0-9_.-]+$",
                         description="queue name: harmful records go to <dataset>-harmful, benign to <dataset>-benign")
    min_submitted: int = Field(1, gt=0)
    rule: AggregationRule = "majority"
    select: SelectionConfig = Field(default_factory=SelectionConfig)
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)
    trust: TrustConfig = Field(default_factory=TrustConfig)

    def queue_name(self, label: str) -> str:
        """Each label has a queue of its own, with the questions that fit it (settings.py)."""
        return f"{self.dataset}-{label}"


def load_review_config(path: str | Path | None = None, **overrides) -> ReviewConfig:
    """configs/review.yaml by default; `overrides` (dotted paths such as "select.rules"; None means: keep the
    file's value) are validated too."""
    return load_config(path or CONFIGS_DIR / "review.yaml", ReviewConfig, overrides)
