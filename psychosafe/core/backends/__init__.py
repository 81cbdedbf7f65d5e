"""One factory from a config block to a distilabel LLM or an embedder. Nothing loads here: models load
inside the pipeline's workers. A wrong backend or a missing model folder fails before any of that."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from psychosafe.core.config import EmbedderConfig, LLMConfig
from psychosafe.errors import PsychosafeError

from .embedded import MINILM_NAME, SMOLLM2_NAME, ensure_smollm2, minilm_folder, smollm2_folder, smollm2_gguf_path


def model_id(config: LLMConfig) -> str:
    """What the manifest and the records name as the model."""
    return f"embedded/{SMOLLM2_NAME}" if config.backend == "embedded" else str(config.model)


def check_llm(config: LLMConfig) -> None:
    """Everything that can be checked without loading the model."""
    if config.backend == "transformers" and not (Path(config.model) / "config.json").is_file():
        raise PsychosafeError(f"generator.model: {config.model} is not a local model folder (no config.json)")
    if config.backend == "vllm" and importlib.util.find_spec("vllm") is None:
        raise PsychosafeError("backend 'vllm' needs vLLM installed in this environment (pip install vllm), "
                              "or serve the model with vLLM and use backend 'openai' with its base_url")
    if config.backend == "openai" and importlib.util.find_spec("openai") is None:
        raise PsychosafeError("backend 'openai' needs the openai package: pip install 'psychosafe[openai]'")
    if config.backend == "embedded":
        if not (smollm2_folder() / "config.json").is_file():
            smollm2_gguf_path()  # raises with the install hint
    if config.structured_output and config.backend in ("embedded", "transformers") \
            and importlib.util.find_spec("xgrammar") is None:
        raise PsychosafeError("structured_output on the embedded and transformers backends needs xgrammar: "
                              "pip install 'psychosafe[structured]' (or run `make setup`), or set "
                              "`structured_output: false` in the config to let answers be parsed and retried unaided")


def generation_kwargs(config: LLMConfig) -> dict:
    kwargs = {"max_new_tokens": config.max_new_tokens, "temperature": config.temperature, "top_p": config.top_p}
    if config.backend in ("embedded", "transformers"):
        kwargs["do_sample"] = config.temperature > 0
    return kwargs


def build_llm(config: LLMConfig):
    """A distilabel LLM for the config block (not loaded)."""
    check_llm(config)
    gen = generation_kwargs(config)
    if config.backend in ("embedded", "transformers"):
        from .batched_transformers import BatchedTransformersLLM

        path = ensure_smollm2() if config.backend == "embedded" else Path(config.model)
        return BatchedTransformersLLM(model=str(path), device=config.device, torch_dtype=config.dtype,
                                      seed=config.seed, generation_kwargs=gen,
                                      constrains_per_row=config.structured_output)
    if config.backend == "openai":
        from .structured_openai import StructuredOpenAILLM

        key = os.environ.get(config.api_key_env) or "EMPTY"  # local OpenAI-compatible servers take any key
        return StructuredOpenAILLM(model=config.model, base_url=config.base_url, api_key=key, generation_kwargs=gen,
                                   constrains_per_row=config.structured_output)
    from distilabel.models import vLLM

    return vLLM(model=config.model, dtype=config.dtype, seed=config.seed or 0, generation_kwargs=gen)


def embedder_id(config: EmbedderConfig) -> str:
    return f"embedded/{MINILM_NAME}" if config.backend == "embedded" else str(config.model)


def build_embedder(config: EmbedderConfig):
    """A loaded sentence-transformers model."""
    from sentence_transformers import SentenceTransformer

    path = str(minilm_folder()) if config.backend == "embedded" else config.model
    return SentenceTransformer(path, device=config.device)
