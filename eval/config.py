"""The eval config (configs/eval.yaml): the model under test, the judge (or panel), retries, statistics."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from psychosafe.config import CONFIGS_DIR, LLMConfig
from psychosafe.errors import input_error_from_validation
from psychosafe.schemas._yaml import load_model


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CapabilityConfig(_Config):
    """lm-evaluation-harness tasks run on the model under test (the paper used MMLU and HellaSwag)."""

    tasks: list[str] = Field(default_factory=list)
    limit: int | None = Field(100, gt=0, description="examples per task; None for all")
    batch_size: int = Field(8, gt=0)


class EvalConfig(_Config):
    name: str = Field("eval", pattern=r"^[A-Za-z0-9_.-]+$")
    generator: LLMConfig = Field(default_factory=lambda: LLMConfig(temperature=0, max_new_tokens=160, seed=42))
    variant: Literal["v0", "v1", "v1-routed"] = "v1"
    judges: list[LLMConfig] = Field(default_factory=lambda: [LLMConfig(temperature=0, max_new_tokens=96, seed=42)],
                                    min_length=1, description="one judge, or a panel (majority vote, median)")
    judge_retries: int = Field(2, ge=0, description="extra tries for rows whose judge output did not parse")
    bootstrap_resamples: int = Field(2000, ge=100)
    seed: int = 0
    capability: CapabilityConfig = Field(default_factory=CapabilityConfig)


def load_eval_config(path: str | Path | None = None, **overrides) -> EvalConfig:
    """configs/eval.yaml by default; `overrides` (None = keep) are validated like the file's own values."""
    path = Path(path) if path else CONFIGS_DIR / "eval.yaml"
    # an installed wheel has no configs/ folder: the model's defaults are the same as configs/eval.yaml's
    config = load_model(path, EvalConfig) if path.is_file() or path != CONFIGS_DIR / "eval.yaml" else EvalConfig()
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if overrides:
        data = config.model_dump()
        for key, value in overrides.items():
            if "." in key:  # "generator.model"
                outer, inner = key.split(".", 1)
                data[outer] = data[outer] | {inner: value}
            else:
                data[key] = value
        try:
            config = EvalConfig.model_validate(data)
        except ValidationError as exc:
            raise input_error_from_validation(f"{path} (with command-line options)", exc, data) from None
    return config
