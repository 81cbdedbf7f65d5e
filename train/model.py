"""The base model: where it is, how it loads (dtype, QLoRA), the LoRA config, and loading a trained adapter."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from psychosafe.core.backends.embedded import ensure_smollm2
from psychosafe.errors import InputError, PsychosafeError

from .config import EMBEDDED_MODEL, LoraSettings, ModelSettings

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def resolve_base_model(settings: ModelSettings, *, config_file: str | Path = "train config") -> str:
    """A local folder or a hub id that has a model config; checked by reading only config.json."""
    if settings.base == EMBEDDED_MODEL:
        try:
            return str(ensure_smollm2())
        except PsychosafeError as exc:
            raise InputError(config_file, str(exc), where="model.base") from None
    path = Path(settings.base).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise InputError(config_file, f"{path} is not a model folder (no config.json)", where="model.base")
        return str(path.resolve())
    if not _HUB_ID.match(settings.base):
        raise InputError(config_file, f"'{settings.base}' is neither a local folder nor a hub id (org/name)",
                         where="model.base")
    try:
        base_config(settings.base, settings)
    except OSError as exc:
        raise InputError(config_file, f"hub model '{settings.base}' not found locally or on the Hub "
                                      f"({str(exc).splitlines()[0]})", where="model.base") from None
    return settings.base


def base_config(model: str, settings: ModelSettings):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(model, revision=settings.revision, trust_remote_code=settings.trust_remote_code)


def has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def use_4bit(settings: ModelSettings, *, config_file: str | Path = "train config") -> bool:
    """QLoRA when asked for (or on `auto` when a GPU and bitsandbytes are both there)."""
    possible = has_cuda() and importlib.util.find_spec("bitsandbytes") is not None
    if settings.quantization == "4bit" and not possible:
        raise InputError(config_file, "4bit (QLoRA) needs a CUDA GPU and bitsandbytes (pip install bitsandbytes); "
                                      "use quantization: none on this machine", where="model.quantization")
    return settings.quantization == "4bit" or (settings.quantization == "auto" and possible)


def precision(training: dict) -> str:
    """The training block's TRL flags: bf16 or fp16 when it sets one, fp32 when it turns bf16 off; auto when it
    names neither (psychosafe's choice: bf16 on a GPU that has it, fp32 otherwise, where TRL would default to bf16
    everywhere and fail on a CPU)."""
    if training.get("bf16"):
        return "bf16"
    if training.get("fp16"):
        return "fp16"
    if "bf16" in training:
        return "fp32"
    import torch

    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"


def torch_dtype(settings: ModelSettings, training: dict):
    import torch

    if settings.dtype != "auto":
        return getattr(torch, settings.dtype)
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision(training), torch.float32)


def model_init_kwargs(settings: ModelSettings, training: dict, *, quantized: bool) -> dict:
    kwargs: dict = {"dtype": torch_dtype(settings, training), "revision": settings.revision,
                    "trust_remote_code": settings.trust_remote_code}
    if settings.attn_implementation:
        kwargs["attn_implementation"] = settings.attn_implementation
    if quantized:
        import torch
        from accelerate import PartialState
        from transformers import BitsAndBytesConfig

        compute = torch.bfloat16 if precision(training) == "bf16" else torch.float16
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute, bnb_4bit_quant_storage=compute)
        # a 4-bit model cannot be moved after loading: each process loads it onto its own GPU
        kwargs["device_map"] = {"": PartialState().local_process_index}
    return kwargs


def lora_config(settings: LoraSettings):
    from peft import LoraConfig

    return LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                      target_modules=settings.target_modules, bias=settings.bias, task_type="CAUSAL_LM")


def load_base_model(model: str, settings: ModelSettings, training: dict, *, quantized: bool):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model, **model_init_kwargs(settings, training, quantized=quantized))


def load_tokenizer(model: str, settings: ModelSettings):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model, revision=settings.revision,
                                              trust_remote_code=settings.trust_remote_code)
    if not tokenizer.chat_template:
        raise InputError(model, "the tokenizer has no chat template; train an instruct/chat model, or add one",
                         where="model.base")
    return tokenizer


def count_lora_parameters(model: str, settings: ModelSettings, lora: LoraSettings, *,
                          config_file: str | Path = "train config") -> tuple[int, int]:
    """(trainable, total) parameters with the adapter, on the meta device: no weights are read, so a dry run
    of a 27B model costs nothing."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(base_config(model, settings),
                                                    trust_remote_code=settings.trust_remote_code)
    try:
        peft_model = get_peft_model(skeleton, lora_config(lora))
    except ValueError as exc:  # target modules that the model does not have
        raise InputError(config_file, str(exc).splitlines()[0], where="lora.target_modules") from None
    return peft_model.get_nb_trainable_parameters()
