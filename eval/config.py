"""The eval config (configs/eval.yaml): the model under test, the judge (or panel), retries, statistics."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from psychosafe.core.config import CONFIGS_DIR, LLMConfig, _Config, load_config
from psychosafe.core.prompts import Variant


class CapabilityConfig(_Config):
    """lm-evaluation-harness tasks run on the model under test (the paper used MMLU and HellaSwag)."""

    tasks: list[str] = Field(default_factory=list)
    limit: int | None = Field(100, gt=0, description="examples per task; None for all")
    batch_size: int = Field(8, gt=0)


MissingPolicy = Literal["paired", "per_criterion"]
NonIntegerRule = Literal["keep", "round"]


class EvalConfig(_Config):
    name: str = Field("eval", pattern=r"^[A-Za-z0-9_.-]+$")
    generator: LLMConfig = Field(default_factory=lambda: LLMConfig(temperature=0, max_new_tokens=160, seed=42))
    variant: Variant = "v1"
    judges: list[LLMConfig] = Field(default_factory=lambda: [LLMConfig(temperature=0, max_new_tokens=96, seed=42)],
                                    min_length=1, description="one judge, or a panel (majority vote, median)")
    judge_retries: int = Field(2, ge=0, description="extra tries for rows whose judge output did not parse")
    bootstrap_resamples: int = Field(2000, ge=100)
    missing: MissingPolicy = Field("paired", description=(
        "compare: a prompt whose verdict is missing on a criterion. `paired`: the prompt counts only when every "
        "criterion is scored in both folders; `per_criterion`: each folder's mean over the prompts it scored on that "
        "criterion (unpaired, as the paper's code)"))
    non_integer: NonIntegerRule = Field("keep", description=(
        "import: a non-integer rating on a 1-5 criterion (4.5). `keep` it as given (as the paper's code), or `round` "
        "it half up (4.5 -> 5)"))
    seed: int = 0
    capability: CapabilityConfig = Field(default_factory=CapabilityConfig)


def load_eval_config(path: str | Path | None = None, **overrides) -> EvalConfig:
    """configs/eval.yaml by default; `overrides` ("generator.model": ..., None = keep) are validated too."""
    return load_config(path or CONFIGS_DIR / "eval.yaml", EvalConfig, overrides)
