"""Pydantic models of the YAML run configs. A bad value fails at once, naming file, field and expectation."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from psychosafe.schemas._yaml import load_model
from psychosafe.schemas.resources import LOCALE_PATTERN
from psychosafe.schemas.taxonomy import default_taxonomy

CONFIGS_DIR = Path(__file__).resolve().parent.parent / "configs"
BUILTIN_SEEDS = "builtin"


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LLMConfig(_Config):
    """One model behind one backend. `model` is a local folder (transformers, vllm), a served model name
    (openai) or empty for the embedded model."""

    backend: Literal["embedded", "transformers", "openai", "vllm"] = "embedded"
    model: str | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    device: str = "cpu"
    dtype: str = "float32"
    max_new_tokens: int = Field(200, gt=0)
    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    batch_size: int = Field(8, gt=0)
    seed: int | None = None

    @model_validator(mode="after")
    def _model_named_when_needed(self) -> "LLMConfig":
        if self.backend != "embedded" and not self.model:
            raise ValueError(f"backend '{self.backend}' needs `model` (a local folder or a served model name)")
        if self.backend == "openai" and not self.base_url:
            raise ValueError("backend 'openai' needs `base_url`, e.g. http://127.0.0.1:8000/v1")
        return self


class EmbedderConfig(_Config):
    backend: Literal["embedded", "sentence-transformers"] = "embedded"
    model: str | None = None
    device: str = "cpu"
    batch_size: int = Field(64, gt=0)

    @model_validator(mode="after")
    def _model_named_when_needed(self) -> "EmbedderConfig":
        if self.backend != "embedded" and not self.model:
            raise ValueError("backend 'sentence-transformers' needs `model` (a local folder or a hub id)")
        return self


class SeedSource(_Config):
    """A seed file to import: JSONL, CSV, parquet, a saved dataset folder, or a Hub dataset id."""

    path: str = BUILTIN_SEEDS
    format: Literal["auto", "jsonl", "csv", "parquet", "disk", "hub"] = "auto"
    split: str = "train"
    columns: dict[str, str] = Field(default_factory=dict, description="record field -> column in the file")
    defaults: dict[str, str] = Field(default_factory=dict, description="record field -> value for rows without one")
    license: str | None = None
    name: str | None = None

    @field_validator("columns", "defaults")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        from psychosafe.pipelines.seeds import SEED_FIELDS

        unknown = [k for k in value if k not in SEED_FIELDS]
        if unknown:
            raise ValueError(f"unknown record field(s) {unknown}; expected some of {list(SEED_FIELDS)}")
        return value


class SplitConfig(_Config):
    validation_per_domain: int = Field(100, ge=0)
    test_per_domain: int = Field(100, ge=0)


class CurationConfig(_Config):
    splits: SplitConfig = Field(default_factory=SplitConfig)
    on_refusal_mismatch: Literal["drop", "flag"] = Field(
        "drop", description="a harmful prompt not refused, or a benign one refused: drop it, or keep it flagged in checks.passed")


class LLMResources(_Config):
    """distilabel StepResources for every step that runs an LLM (generate, critique, judge), on either
    executor: e.g. one vLLM replica per GPU with `replicas: 8, gpus: 1`."""

    replicas: int = Field(1, gt=0)
    cpus: int | None = Field(None, gt=0, description="CPUs each replica holds (on Ray: its torch threads)")
    gpus: int | None = Field(None, gt=0)


class RebuildConfig(_Config):
    name: str = Field("rebuild", pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = 42
    target: int = Field(8019, gt=0, description="number of prompts to take into the run")
    domains: list[str] = Field(default_factory=lambda: default_taxonomy().domain_ids())
    locales: list[str] = Field(default_factory=lambda: ["en-US", "en-GB"])
    benign_fraction: float = Field(0.2, ge=0, le=1, description="share of benign contrast prompts")
    seeds: list[SeedSource] = Field(default_factory=lambda: [SeedSource()], min_length=1)
    generator: LLMConfig = Field(default_factory=LLMConfig)
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)
    curation: CurationConfig = Field(default_factory=CurationConfig)
    executor: Literal["local", "ray"] = Field("local", description="run the pipelines in local processes or on Ray")
    ray_address: str | None = Field(None, description="Ray cluster to join (e.g. auto, ray://head:10001); "
                                                      "empty: start a local Ray")
    llm_resources: LLMResources = Field(default_factory=LLMResources)

    @field_validator("domains")
    @classmethod
    def _known_domains(cls, value: list[str]) -> list[str]:
        known = default_taxonomy().domain_ids()
        unknown = [d for d in value if d not in known]
        if unknown or not value:
            raise ValueError(f"unknown domain(s) {unknown}; expected a non-empty list from {known}")
        return value

    @field_validator("locales")
    @classmethod
    def _locales_in_directory(cls, value: list[str]) -> list[str]:
        import re

        from psychosafe.schemas.resources import default_resources

        known = default_resources().locales()
        bad = [x for x in value if not re.fullmatch(LOCALE_PATTERN, x) or x not in known]
        if bad or not value:
            raise ValueError(f"locale(s) {bad} have no entries in resources.yaml; expected some of {known}")
        return value


def load_rebuild_config(path: str | Path | None = None, **overrides) -> RebuildConfig:
    """Load a rebuild config; `overrides` (e.g. target=10) are validated like the file's own values."""
    path = Path(path) if path else CONFIGS_DIR / "embedded.yaml"
    config = load_model(path, RebuildConfig)
    if overrides:
        from pydantic import ValidationError

        from psychosafe.errors import input_error_from_validation

        data = config.model_dump() | {k: v for k, v in overrides.items() if v is not None}
        try:
            config = RebuildConfig.model_validate(data)
        except ValidationError as exc:
            raise input_error_from_validation(f"{path} (with command-line options)", exc, data) from None
    return config
