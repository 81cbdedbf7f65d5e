"""The resolved plan of a training run: model, data, tokens, steps and trainable parameters. `--dry-run` prints
it; a real run writes it next to the adapter. Building it reads configs and tokenizers, never weights."""

from __future__ import annotations

import bisect
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from psychosafe.core.runs import RunFolder
from psychosafe.errors import InputError

from .config import TrainConfig
from .data import TrainingData, training_data
from .model import count_lora_parameters, load_tokenizer, precision, resolve_base_model, use_4bit
from .tokens import LossOn, TemplateMismatch, answer_start, conversation_tokens

# The TRL settings a plan (and the model card) shows, as TRL resolved them.
SCHEDULE = ("learning_rate", "lr_scheduler_type", "warmup_steps", "num_train_epochs", "max_steps",
            "per_device_train_batch_size", "gradient_accumulation_steps", "max_length", "packing", "optim", "seed",
            "beta", "loss_type")


@dataclass
class TrainPlan:
    method: str
    base_model: str
    quantization: str
    precision: str
    system_prompt: str
    dataset: str
    dataset_run: str
    train_examples: int
    eval_examples: int
    with_reasoning: int
    set_aside: dict
    tokens: dict
    sequences: int
    effective_batch: int
    steps_per_epoch: int
    total_steps: int
    epochs: float
    trainable_parameters: int
    total_parameters: int
    world_size: int = 1
    schedule: dict = field(default_factory=dict)  # TRL's resolved values of SCHEDULE
    notes: list[str] = field(default_factory=list)

    @property
    def trainable_percent(self) -> float:
        return 100 * self.trainable_parameters / max(self.total_parameters, 1)

    def as_dict(self) -> dict:
        return asdict(self) | {"trainable_percent": round(self.trainable_percent, 4)}

    def rows(self) -> list[tuple[str, str]]:
        """The plan as (what, value) lines for a table."""
        t = self.tokens
        aside = "; ".join(f"{split}: " + ", ".join(f"{n} {why}" for why, n in reasons.items())
                          for split, reasons in self.set_aside.items() if reasons) or "none"
        return [
            ("method", self.method.upper() + " + LoRA" + (" (QLoRA 4-bit)" if self.quantization == "4bit" else "")),
            ("base model", self.base_model),
            ("precision", self.precision),
            ("dataset", f"{self.dataset} (run {self.dataset_run})"),
            ("system prompt", self.system_prompt),
            ("examples", f"{self.train_examples} train, {self.eval_examples} eval, "
                         f"{self.with_reasoning} with reasoning"),
            ("set aside", aside),
            ("tokens per example", f"mean {t['mean']:.0f}, max {t['max']}, {t['over_max_length']} over max_length "
                                   f"{t['max_length']} (truncated)"),
            ("sequences", f"{self.sequences}" + (" (packed)" if self.sequences != self.train_examples else "")),
            ("steps", f"{self.total_steps} ({self.steps_per_epoch} per epoch x {self.epochs:g} epochs, "
                      f"effective batch {self.effective_batch} on {self.world_size} process(es))"),
            ("schedule", ", ".join(f"{k} {v}" for k, v in self.schedule.items()
                                   if k not in ("num_train_epochs", "max_steps", "per_device_train_batch_size",
                                                "gradient_accumulation_steps", "max_length"))),
            ("trainable parameters", f"{self.trainable_parameters:,} of {self.total_parameters:,} "
                                     f"({self.trainable_percent:.3f} %)"),
        ] + [("note", n) for n in self.notes]


def example_lengths(data: TrainingData, tokenizer, loss_on: LossOn = "assistant_turns") -> list[tuple[int, int]]:
    """(tokens before the first one trained on, whole example) per training example, as the trainer gets it: an
    SFT conversation tokenized with its mask (train/tokens.py), a DPO prompt with its chosen answer."""
    if "messages" in data.train.column_names:
        lengths = []
        for row in data.train:
            tokens = conversation_tokens(row["messages"], tokenizer, loss_on=loss_on)
            lengths.append((answer_start(tokens["completion_mask"]), len(tokens["input_ids"])))
        return lengths

    def count(messages, **kwargs) -> int:
        text = tokenizer.apply_chat_template(messages, tokenize=False, **kwargs)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return [(count(row["prompt"], add_generation_prompt=True), count(row["prompt"] + row["chosen"]))
            for row in data.train]


def packed_sequences(lengths: list[int], max_length: int) -> int:
    """How many sequences TRL's best-fit-decreasing packing makes: each example, longest first, goes into the
    open sequence with the least room that still fits it, or starts a new one."""
    room: list[int] = []  # free tokens per open sequence, kept sorted
    for n in sorted((min(n, max_length) for n in lengths), reverse=True):
        i = bisect.bisect_left(room, n)
        if i < len(room):
            left = room.pop(i) - n
        else:
            left = max_length - n
        bisect.insort(room, left)
    return len(room)


def dataset_folder(config: TrainConfig, run: RunFolder) -> Path:
    return Path(config.data.dataset) if config.data.dataset else run.curated


def build_plan(config: TrainConfig, run: RunFolder, *, config_file: str | Path = "train config",
               data: TrainingData | None = None) -> tuple[TrainPlan, TrainingData]:
    """Check everything that can fail before a model loads, and work out what the run will do."""
    base = resolve_base_model(config.model, config_file=config_file)
    quantized = use_4bit(config.model, config_file=config_file)
    data = data or training_data(dataset_folder(config, run), config.data,
                                 config.dpo if config.method == "dpo" else None)
    tokenizer = load_tokenizer(base, config.model)
    try:
        prompt_lengths, lengths = zip(*example_lengths(data, tokenizer, config.data.loss_on))
    except TemplateMismatch as exc:
        raise InputError(config_file, f"{base}: {exc}", where="model.base") from None
    # TRL's resolved config: the training block over TRL's defaults (the precision flags do not change a count)
    args = config.trl_config(run.train / "checkpoints", has_eval=data.eval is not None)
    packing = getattr(args, "packing", False)  # SFT only
    limit = args.max_length or max(lengths)  # None: TRL does not truncate
    if packing and not args.max_length:
        raise InputError(config_file, "packing needs a sequence length; set training.max_length",
                         where="training.packing")
    # TRL truncates from the end: an example whose prompt alone fills max_length keeps no answer and is dropped
    no_answer = sum(p >= limit for p in prompt_lengths)
    if no_answer == len(lengths):
        raise InputError(config_file, f"{limit} tokens do not reach the answer of any training example "
                                      f"(prompts take {min(prompt_lengths)}-{max(prompt_lengths)} tokens)",
                         where="training.max_length")
    clipped = [min(n, limit) for n in lengths]
    sequences = packed_sequences(list(lengths), limit) if packing else len(lengths) - no_answer
    world = int(os.environ.get("WORLD_SIZE", "1"))
    batches = math.ceil(sequences / (args.per_device_train_batch_size * world))
    accumulation = args.gradient_accumulation_steps
    per_epoch = max(batches // accumulation + int(batches % accumulation > 0), 1)
    max_steps = args.max_steps if args.max_steps > 0 else None
    total = max_steps or math.ceil(args.num_train_epochs * per_epoch)
    trainable, total_params = count_lora_parameters(base, config.model, config.lora, config_file=config_file)
    notes = []
    if max_steps:
        notes.append(f"max_steps {max_steps} overrides num_train_epochs ({total / per_epoch:.2f} epochs of data)")
    if no_answer:
        notes.append(f"{no_answer} example(s) keep no answer tokens within max_length {limit}: TRL drops them")
    if packing:
        notes.append(f"packing: {len(lengths)} examples into {sequences} sequences of up to {limit} tokens "
                     f"({sum(clipped) / (sequences * limit):.0%} filled)")
    if data.eval is None and args.eval_steps:
        notes.append("no validation examples: evaluation is off")
    plan = TrainPlan(
        method=config.method, base_model=base, quantization="4bit" if quantized else "none",
        precision=precision(config.training), system_prompt=config.data.system_prompt, dataset=str(data.source),
        dataset_run=run.manifest().get("run_id", run.path.name), train_examples=len(data.train),
        eval_examples=len(data.eval) if data.eval is not None else 0, with_reasoning=data.with_reasoning,
        set_aside=data.set_aside,
        tokens={"mean": sum(lengths) / len(lengths), "max": max(lengths), "total": sum(clipped),
                "over_max_length": sum(n > limit for n in lengths), "no_answer": no_answer, "max_length": limit},
        sequences=sequences, effective_batch=args.per_device_train_batch_size * accumulation * world,
        steps_per_epoch=per_epoch, total_steps=total,
        epochs=(total / per_epoch) if max_steps else args.num_train_epochs,
        trainable_parameters=trainable, total_parameters=total_params, world_size=world,
        schedule={name: _plain(getattr(args, name)) for name in SCHEDULE if hasattr(args, name)}, notes=notes)
    return plan, data


def _plain(value):
    """An enum (TRL's scheduler and optimizer names) as its value, for plan.json."""
    return getattr(value, "value", value)
