"""What a training run leaves in <run>/train/: the log, the loss curve and the model card."""

from __future__ import annotations

from pathlib import Path

from psychosafe import __version__
from psychosafe.core.io import write_jsonl_atomic

from .config import TrainConfig
from .plan import TrainPlan


def write_log(log_history: list[dict], path: Path) -> Path:
    """The Trainer's log history, one JSON object per logged step."""
    return write_jsonl_atomic(path, log_history)


def loss_points(log_history: list[dict], key: str) -> tuple[list[int], list[float]]:
    points = [(e["step"], e[key]) for e in log_history if key in e and "step" in e]
    return [s for s, _ in points], [v for _, v in points]


def plot_loss(log_history: list[dict], path: Path, *, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label, style in (("loss", "train", "-o"), ("eval_loss", "validation", "-s")):
        steps, values = loss_points(log_history, key)
        if steps:
            ax.plot(steps, values, style, markersize=3, label=label)
    ax.set(xlabel="optimizer step", ylabel="loss", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def model_card(config: TrainConfig, plan: TrainPlan, summary: dict) -> str:
    """A short card: what was trained on which run, how, and how to load it."""
    lora, t = config.lora, plan.schedule
    targets = lora.target_modules if isinstance(lora.target_modules, str) else ", ".join(lora.target_modules)
    turns = "the last assistant turn" if config.data.loss_on == "last_turn" else "the assistant turns"
    method = {"sft": f"supervised fine-tuning (loss on {turns})",
              "dpo": "DPO: the PsychoSafe response chosen over the generic-prompt baseline"}[config.method]
    trl_class = {"sft": "SFTConfig", "dpo": "DPOConfig"}[config.method]
    eval_loss = summary.get("eval_loss")
    qlora = "; base loaded in 4-bit (QLoRA)" if plan.quantization == "4bit" else ""
    validation = f", validation loss {eval_loss:.4f}" if eval_loss is not None else ""
    final = summary.get("final_train_loss")
    facts = [
        f"**Dataset run**: `{plan.dataset_run}` ({plan.dataset}); {plan.train_examples} training and "
        f"{plan.eval_examples} validation conversations.",
        f"**System prompt during training**: `{plan.system_prompt}` — give the model the same variant at inference.",
        f"**LoRA**: r {lora.r}, alpha {lora.alpha}, dropout {lora.dropout}, on {targets}{qlora}.",
        f"**Schedule** (TRL's {trl_class}): learning_rate {t['learning_rate']:g} ({t['lr_scheduler_type']}, "
        f"warmup_steps {t['warmup_steps']:g}), {summary['steps']} steps, effective batch {plan.effective_batch}, "
        f"max_length {t['max_length']}, packing {'on' if t.get('packing') else 'off'}, {plan.precision}, "
        f"seed {t['seed']}.",
        f"**Result**: final train loss {'–' if final is None else f'{final:.4f}'}{validation}; "
        f"{summary['train_tokens']:,} tokens in {summary['train_seconds']:.0f} s.",
    ]
    bullets = "\n".join(f"- {fact}" for fact in facts)
    return f"""---
base_model: {plan.base_model}
library_name: peft
pipeline_tag: text-generation
tags: [psychosafe, lora, {config.method}, safety, refusals]
---

# PsychoSafe LoRA adapter ({config.method.upper()})

A LoRA adapter for `{plan.base_model}`, trained with psychosafe {__version__} by {method}.

{bullets}

Load it with `psychosafe eval generate --adapter <this folder>`, or `PeftModel.from_pretrained(base, "<this folder>")`.

**Intended use**: research on psychologically-informed refusals. The training data holds prompts about suicide,
self-harm, substances, violence, weapons and sexual crimes. A model trained on it is not a crisis service and must
be evaluated (`psychosafe eval`) before anyone relies on its answers.
"""
