"""Responses for a prompt set from any model, optionally with a LoRA adapter, under a system prompt variant.

The variants (v0, v1, v1-routed, none) are psychosafe.core.prompts's, the same the train stage uses.

An adapter (a PEFT folder as the train stage writes it) is merged into its base model once, into the eval
folder, and the merged folder is served by the transformers backend.
"""

# No `from __future__ import annotations`: distilabel reads the `StepInput` hint at run time.

import time
from pathlib import Path
from typing import Any

from distilabel.steps.tasks import Task

from psychosafe.core.adapters import check_adapter, merged_copy
from psychosafe.core.backends import build_llm, model_id
from psychosafe.core.config import LLMConfig
from psychosafe.core.io import read_json, write_json_atomic
from psychosafe.core.prompts import system_prompt
from psychosafe.errors import PsychosafeError
from psychosafe.pipelines.persist import output_tokens, read_batches, run_persisted
from psychosafe.pipelines.responses import GenerationResult
from psychosafe.schemas import Rejected

from .records import EvalRecord


class EvalResponse(Task):
    """One chat turn: the row's system prompt, then the prompt."""

    @property
    def inputs(self) -> list[str]:
        return ["system_prompt", "prompt"]

    def format_input(self, input: dict[str, Any]) -> list[dict[str, str]]:
        system = [{"role": "system", "content": input["system_prompt"]}] if input["system_prompt"] else []
        return system + [{"role": "user", "content": input["prompt"]}]

    @property
    def outputs(self) -> list[str]:
        return ["response", "model_name"]

    def format_output(self, output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"response": (output or "").strip() or None}


def with_adapter(config: LLMConfig, adapter: Path, folder: Path) -> LLMConfig:
    """The config serving base + adapter: the adapter merged into its base, once, under `folder`."""
    adapter = check_adapter(adapter)
    if config.backend not in ("embedded", "transformers"):
        raise PsychosafeError(f"--adapter works with the embedded and transformers backends; with '{config.backend}', "
                              "serve the adapter yourself (vLLM: --enable-lora --lora-modules NAME=DIR) and name it as "
                              "the model")
    return config.model_copy(update={"backend": "transformers", "model": str(merged_copy(adapter, folder))})


def _claim_folder(out_dir: Path, fingerprint: dict) -> None:
    """A generation folder resumes only the same model, adapter, variant and settings: anything else would mix
    another model's responses into this one's."""
    path = out_dir / "fingerprint.json"
    before = read_json(path)
    if before is not None:
        if before != fingerprint:
            changed = sorted(k for k in fingerprint if before.get(k) != fingerprint[k])
            raise PsychosafeError(f"{out_dir.parent} holds responses generated with another {', '.join(changed)}; "
                                  "give this eval another --name (or delete that folder to start over)")
        return
    write_json_atomic(path, fingerprint)


def generate_eval(records: list[EvalRecord], config: LLMConfig, out_dir: Path, *, variant: str = "v0",
                  adapter: Path | None = None, progress: bool = True) -> GenerationResult:
    """Fill `response` for every prompt; resumes from the batches already in `out_dir/batches`. Every record is
    returned (an empty answer is an answer to score); empty ones are also listed in `rejected`."""
    start = time.perf_counter()
    prompts = {r.id: system_prompt(r, variant) or "" for r in records}  # a bad variant fails before any model loads
    _claim_folder(out_dir, {"model": model_id(config), "adapter": str(adapter) if adapter else None, "variant": variant,
                            "generation": config.model_dump(mode="json", exclude={"batch_size"})})
    served = with_adapter(config, adapter, out_dir) if adapter else config
    llm = build_llm(served)
    already = len(read_batches(out_dir / "batches").keys() & prompts.keys())
    rows = [{"id": r.id, "prompt": r.prompt, "system_prompt": prompts[r.id]} for r in records]
    done = run_persisted(rows, lambda load: load >> EvalResponse(name="respond", llm=llm,
                                                                 input_batch_size=config.batch_size),
                         out_dir, name="psychosafe-eval-generate", batch_size=config.batch_size, progress=progress)
    name = model_id(config) + (f"+adapter:{adapter}" if adapter else "")
    result = GenerationResult(resumed=already, generated_now=len(records) - already)
    for r in records:
        row = done[r.id]
        result.output_tokens += output_tokens(row, "respond")
        generation = r.generation.model_copy(update={"model": name, "backend": config.backend,
                                                     "template_version": f"eval-{variant}", "seed": config.seed})
        record = r.model_copy(update={"response": (row.get("response") or "").strip(), "generation": generation,
                                      "variant": variant, "adapter": str(adapter) if adapter else None})
        if not record.response:
            raw = (row.get("distilabel_metadata") or {}).get("raw_output_respond")
            result.rejected.append(Rejected.of(record, "eval-generate", "empty_response",
                                               "empty response from the model", raw_output=raw))
        result.records.append(record)
    result.seconds = time.perf_counter() - start
    return result
