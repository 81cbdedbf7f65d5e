"""The training stage: plan (fails before any weights load), train with TRL, write <run>/train/.

<run>/train/
  config.yaml       the resolved config            plan.json     what the run set out to do
  adapter/          PEFT save_pretrained folder (adapter_config.json names the base model) + tokenizer + card
  merged/           base + adapter in one folder (outputs.merge: true)
  log.jsonl         the Trainer's log history      loss.png      train and validation loss per step
  summary.json      steps, losses, tokens/s        README.md     the model card
  checkpoints/      while running; a rerun with the same config resumes from the last one
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from psychosafe.core.adapters import merge_adapter
from psychosafe.core.io import write_json_atomic, write_text_atomic
from psychosafe.core.runs import RunFolder

from .config import TrainConfig
from .model import load_base_model, load_tokenizer, torch_dtype
from .outputs import loss_points, model_card, plot_loss, write_log
from .plan import TrainPlan, build_plan
from .progress import TokenMeter
from .trainers import build_trainer

RESUME_KEY_FILE = "resume_key"


@dataclass
class TrainResult:
    plan: TrainPlan
    output: Path | None = None
    summary: dict = field(default_factory=dict)

    @property
    def adapter(self) -> Path | None:
        return self.output / "adapter" if self.output else None


def _checkpoint_to_resume(folder: Path, key: str, *, resume: bool = True) -> str | None:
    """The last checkpoint of an interrupted run with the same config; stale ones (other config), or all of them
    when `resume` is off, are cleared."""
    from transformers.trainer_utils import get_last_checkpoint

    if folder.is_dir():
        key_file = folder / RESUME_KEY_FILE
        if not resume or not key_file.is_file() or key_file.read_text().strip() != key:
            shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RESUME_KEY_FILE).write_text(key + "\n")
    return get_last_checkpoint(str(folder))


def train_run(config: TrainConfig, run_dir: str | Path, *, config_file: str | Path = "train config",
              dry_run: bool = False, on_plan: Callable[[TrainPlan], None] | None = None,
              callbacks: list | None = None) -> TrainResult:
    """Train a LoRA adapter on a run's curated dataset (or just plan it, with `dry_run`); `on_plan` sees the plan
    before any weights load (the CLI prints it); `callbacks` are more TrainerCallbacks (a benchmark's clock)."""
    started = time.perf_counter()
    run = RunFolder(run_dir)
    plan, data = build_plan(config, run, config_file=config_file)
    if on_plan:
        on_plan(plan)
    if dry_run:
        return TrainResult(plan=plan)

    from accelerate import PartialState

    out = run.train
    with PartialState().main_process_first():  # under `accelerate launch`, the main process sets the folder up
        if PartialState().is_main_process:
            out.mkdir(parents=True, exist_ok=True)
            write_text_atomic(out / "config.yaml", yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
            write_json_atomic(out / "plan.json", plan.as_dict())
        resume = _checkpoint_to_resume(out / "checkpoints", config.resume_key(), resume=config.outputs.resume)

    model = load_base_model(plan.base_model, config.model, config.training, quantized=plan.quantization == "4bit")
    tokenizer = load_tokenizer(plan.base_model, config.model)
    trainer = build_trainer(config, model, tokenizer, data, out / "checkpoints")
    meter = TokenMeter()
    for callback in [meter, *(callbacks or [])]:
        trainer.add_callback(callback)
    trainer.train(resume_from_checkpoint=resume)
    # None when every validation example lost its answer to max_length (the plan's notes say how many)
    eval_loss = trainer.evaluate().get("eval_loss") if data.eval is not None else None
    trainer.save_model(str(out / "adapter"))
    if not trainer.is_world_process_zero():
        return TrainResult(plan=plan, output=out)

    history = trainer.state.log_history
    write_log(history, out / "log.jsonl")
    plot_loss(history, out / "loss.png", title=f"{config.method.upper()} + LoRA on {Path(plan.base_model).name}")
    _, losses = loss_points(history, "loss")
    summary = {"steps": trainer.state.global_step, "resumed_from": resume,
               "first_train_loss": losses[0] if losses else None, "final_train_loss": losses[-1] if losses else None,
               "eval_loss": eval_loss, "train_tokens": meter.tokens, "train_seconds": round(meter.seconds, 3),
               "tokens_per_second": round(meter.tokens_per_second, 2), "adapter": str(out / "adapter")}
    card = model_card(config, plan, summary)
    for place in (out / "README.md", out / "adapter" / "README.md"):
        write_text_atomic(place, card)
    if config.outputs.merge:
        del trainer, model  # free the training copy before loading the base again for the merge
        merged = merge_adapter(out / "adapter", out / "merged", torch_dtype(config.model, config.training))
        summary["merged"] = str(merged)
    if not config.outputs.keep_checkpoints:
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    write_json_atomic(out / "summary.json", summary)
    run.record_stage("train", seconds=time.perf_counter() - started,
                     counts={"examples": plan.train_examples, "eval_examples": plan.eval_examples,
                             "steps": summary["steps"], "tokens": meter.tokens})
    return TrainResult(plan=plan, output=out, summary=summary)
