"""PEFT adapters as the train stage writes them, loaded or merged into their base: what training writes and eval
reads, so it lives below both."""

from __future__ import annotations

from pathlib import Path

from psychosafe.errors import InputError


def load_trained(adapter_dir: str | Path, *, dtype=None, device: str | None = None):
    """(model, tokenizer) for a trained adapter folder: its base model (named in adapter_config.json) with the
    adapter applied. The eval stage's generator can load it this way or with PeftModel.from_pretrained."""
    import torch
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise InputError(adapter_dir, "not a PEFT adapter folder (no adapter_config.json)")
    base = PeftConfig.from_pretrained(str(adapter_dir)).base_model_name_or_path
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype or torch.float32)
    model = PeftModel.from_pretrained(model, str(adapter_dir))
    if device:
        model = model.to(device)
    tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir) if (adapter_dir / "tokenizer_config.json").is_file()
                                              else base)
    return model.eval(), tokenizer


def merge_adapter(adapter_dir: Path, target: Path, dtype) -> Path:
    """Base + adapter as one plain model folder, merged from an unquantized base (merging into 4-bit is lossy)."""
    model, tokenizer = load_trained(adapter_dir, dtype=dtype)
    model.merge_and_unload().save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
    return target
