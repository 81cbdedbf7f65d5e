"""TRL trainers from a TrainConfig: SFTTrainer (loss on the assistant turn) or DPOTrainer, both with a PEFT LoRA."""

from __future__ import annotations

from pathlib import Path

from .config import TrainConfig
from .data import TrainingData
from .model import lora_config, precision
from .progress import RichProgress


def trainer_arguments(config: TrainConfig, output_dir: Path, *, has_eval: bool) -> dict:
    """The TrainingArguments both trainers share."""
    t = config.training
    mixed = precision(t)
    return dict(
        output_dir=str(output_dir), seed=t.seed, data_seed=t.seed,
        num_train_epochs=t.epochs, max_steps=t.max_steps or -1,
        learning_rate=t.learning_rate, lr_scheduler_type=t.lr_scheduler, warmup_steps=t.warmup,
        weight_decay=t.weight_decay, max_grad_norm=t.max_grad_norm, optim=t.optim,
        per_device_train_batch_size=t.per_device_batch_size,
        per_device_eval_batch_size=t.eval_batch_size or t.per_device_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        gradient_checkpointing=t.gradient_checkpointing, bf16=mixed == "bf16", fp16=mixed == "fp16",
        logging_steps=t.logging_steps, logging_first_step=True,
        eval_strategy="steps" if has_eval and t.eval_steps else "no", eval_steps=t.eval_steps,
        save_strategy="steps", save_steps=t.save_steps, save_total_limit=2,
        include_num_input_tokens_seen="non_padding", report_to="none", disable_tqdm=True,
        max_length=t.max_length, dataset_num_proc=None,
    )


def build_trainer(config: TrainConfig, model, tokenizer, data: TrainingData, output_dir: Path):
    """An SFTTrainer or a DPOTrainer over `model` (not yet wrapped: the trainer applies the LoRA config)."""
    from transformers import PrinterCallback

    args = trainer_arguments(config, output_dir, has_eval=data.eval is not None)
    common = dict(model=model, processing_class=tokenizer, train_dataset=data.train, eval_dataset=data.eval,
                  peft_config=lora_config(config.lora), callbacks=[RichProgress()])
    if config.method == "dpo":
        from trl import DPOConfig, DPOTrainer

        trainer = DPOTrainer(args=DPOConfig(**args, beta=config.dpo.beta, loss_type=[config.dpo.loss_type]), **common)
    else:
        from trl import SFTConfig, SFTTrainer

        # prompt-completion conversations: TRL masks the prompt, so the loss is on the assistant turn only
        trainer = SFTTrainer(args=SFTConfig(**args, packing=config.training.packing, completion_only_loss=True),
                             **common)
    trainer.remove_callback(PrinterCallback)  # the rich bar shows progress; every log line goes to log.jsonl
    return trainer
