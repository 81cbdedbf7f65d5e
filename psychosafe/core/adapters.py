"""PEFT adapters as the train stage writes them, loaded or merged into their base: what training writes and eval
reads, so it lives below both."""

from __future__ import annotations

import hashlib
from pathlib import Path

from psychosafe.core.io import staged_folder
from psychosafe.errors import InputError


def check_adapter(adapter_dir: str | Path) -> Path:
    """The folder, if it is a PEFT adapter folder (it has adapter_config.json naming the base model)."""
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise InputError(adapter_dir, "not a PEFT adapter folder (no adapter_config.json); expected e.g. "
                                      "RUN/train/adapter")
    return adapter_dir


def load_trained(adapter_dir: str | Path, *, dtype=None, device: str | None = None):
    """(model, tokenizer) for a trained adapter folder: its base model (named in adapter_config.json) with the
    adapter applied."""
    import torch
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_dir = check_adapter(adapter_dir)
    base = PeftConfig.from_pretrained(str(adapter_dir)).base_model_name_or_path
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype or torch.float32)
    model = PeftModel.from_pretrained(model, str(adapter_dir))
    if device:
        model = model.to(device)
    tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir) if (adapter_dir / "tokenizer_config.json").is_file()
                                              else base)
    return model.eval(), tokenizer


def merge_adapter(adapter_dir: str | Path, target: Path, dtype=None) -> Path:
    """Base + adapter as one plain model folder, merged from an unquantized base (merging into 4-bit is lossy).
    The folder appears whole or not at all."""
    model, tokenizer = load_trained(adapter_dir, dtype=dtype)
    with staged_folder(target) as staging:
        model.merge_and_unload().save_pretrained(str(staging))
        tokenizer.save_pretrained(str(staging))
    return target


def merged_copy(adapter_dir: str | Path, folder: Path) -> Path:
    """`folder/merged-<hash of the adapter's files>`: the adapter merged into its base once; the same adapter
    again reuses it, a retrained one gets a new folder."""
    adapter_dir = check_adapter(adapter_dir)
    stamp = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(adapter_dir.glob("adapter_*")))).hexdigest()[:12]
    target = folder / f"merged-{stamp}"
    if not (target / "config.json").is_file():
        merge_adapter(adapter_dir, target)
    return target
