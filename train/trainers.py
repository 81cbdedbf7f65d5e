"""TRL trainers from a TrainConfig: SFTTrainer (loss on the assistant turn) or DPOTrainer, both with a PEFT LoRA.
The training block is TRL's own config (train/config.py), so nothing is renamed here."""

from __future__ import annotations

from pathlib import Path

from .config import TrainConfig
from .data import TrainingData
from .model import lora_config, precision
from .progress import TrainProgress


def build_trainer(config: TrainConfig, model, tokenizer, data: TrainingData, output_dir: Path):
    """An SFTTrainer or a DPOTrainer over `model` (not yet wrapped: the trainer applies the LoRA config)."""
    from transformers import PrinterCallback
    from trl import DPOTrainer, SFTTrainer

    args = config.trl_config(output_dir, has_eval=data.eval is not None, precision=precision(config.training))
    # SFT rows are prompt-completion conversations: TRL masks the prompt (completion_only_loss, psychosafe's
    # default), so the loss is on the assistant turn only. DPO rows are prompt / chosen / rejected.
    trainer_class = DPOTrainer if config.method == "dpo" else SFTTrainer
    trainer = trainer_class(model=model, args=args, processing_class=tokenizer, train_dataset=data.train,
                            eval_dataset=data.eval, peft_config=lora_config(config.lora), callbacks=[TrainProgress()])
    trainer.remove_callback(PrinterCallback)  # our bar shows progress; every log line goes to log.jsonl
    return trainer
