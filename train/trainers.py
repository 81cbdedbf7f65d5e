"""TRL trainers from a TrainConfig: SFTTrainer (loss on the assistant turns) or DPOTrainer, both with a PEFT LoRA.
The training block is TRL's own config (train/config.py), so nothing is renamed here."""

from __future__ import annotations

from pathlib import Path

from .config import TrainConfig
from .data import TrainingData
from .model import lora_config, precision
from .progress import TrainProgress
from .tokens import tokenized


def build_trainer(config: TrainConfig, model, tokenizer, data: TrainingData, output_dir: Path):
    """An SFTTrainer or a DPOTrainer over `model` (not yet wrapped: the trainer applies the LoRA config)."""
    from transformers import PrinterCallback
    from trl import DPOTrainer, SFTTrainer

    args = config.trl_config(output_dir, has_eval=data.eval is not None, precision=precision(config.training))
    # SFT rows are whole conversations, tokenized here with their mask on the assistant turns (train/tokens.py):
    # TRL applies it (completion_only_loss, psychosafe's default). DPO rows are prompt / chosen / rejected.
    train, evaluation = data.train, data.eval
    if config.method == "sft":
        train = tokenized(train, tokenizer, loss_on=config.data.loss_on)
        evaluation = tokenized(evaluation, tokenizer, loss_on=config.data.loss_on) if evaluation is not None else None
    trainer_class = DPOTrainer if config.method == "dpo" else SFTTrainer
    trainer = trainer_class(model=model, args=args, processing_class=tokenizer, train_dataset=train,
                            eval_dataset=evaluation, peft_config=lora_config(config.lora), callbacks=[TrainProgress()])
    trainer.remove_callback(PrinterCallback)  # our bar shows progress; every log line goes to log.jsonl
    return trainer
