"""The review configuration (configs/review.yaml): which server, which queue, how answers are combined, and
which records are pushed."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from psychosafe.core.config import CONFIGS_DIR, EmbedderConfig, load_config

from .agreement import AggregationRule

SelectionRule = Literal["all", "low_scores", "flagged", "sample"]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SelectionConfig(_Config):
    rules: list[SelectionRule] = Field(default_factory=lambda: ["all"], min_length=1,
                                       description="records any of these rules picks are pushed")
    sample_per_domain: int = Field(20, gt=0)
    seed: int = 42


class ReviewConfig(_Config):
    api_url: str | None = None
    api_key: str | None = Field(None, description="prefer the environment variable named by api_key_env")
    api_key_env: str = "ARGILLA_API_KEY"
    workspace: str = Field("argilla", min_length=1)
    dataset: str = Field("psychosafe-review", pattern=r"^[A-Za-z0-9_.-]+$")
    min_submitted: int = Field(1, gt=0)
    rule: AggregationRule = "majority"
    select: SelectionConfig = Field(default_factory=SelectionConfig)
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)


def load_review_config(path: str | Path | None = None, **overrides) -> ReviewConfig:
    """configs/review.yaml by default; `overrides` (dotted paths such as "select.rules"; None means: keep the
    file's value) are validated too."""
    return load_config(path or CONFIGS_DIR / "review.yaml", ReviewConfig, overrides)
