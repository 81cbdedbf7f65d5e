"""The publish configuration (configs/publish.yaml): the card's Hub metadata and the guards."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from psychosafe.core.config import CONFIGS_DIR, load_config

PUBLISH_CONFIG = CONFIGS_DIR / "publish.yaml"


class PublishConfig(BaseModel):
    """configs/publish.yaml: the card's Hub metadata and the guards."""

    model_config = ConfigDict(extra="forbid")

    pretty_name: str = Field("PsychoSafe psychologically-informed refusals", min_length=1)
    license: str = Field("cc-by-4.0", min_length=1, description="Hub license id of the release")
    task_categories: list[str] = Field(default_factory=lambda: ["text-generation"], min_length=1)
    tags: list[str] = Field(default_factory=lambda: ["safety", "refusal", "mental-health", "synthetic",
                                                     "not-for-all-audiences"])
    require_review: bool = Field(True, description="refuse records still pending human review")
    max_shard_bytes: int = Field(500_000_000, gt=0, description="split a split into parquet shards of about this size")


def load_publish_config(path: str | Path | None = None) -> PublishConfig:
    return load_config(path or PUBLISH_CONFIG, PublishConfig)
