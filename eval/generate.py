"""Responses for a prompt set from any model, optionally with a LoRA adapter, under a system prompt variant.

The variants (v0, v1, v1-routed, none) are psychosafe.core.prompts's, the same the train stage uses.

A conversation is generated turn by turn: the model under test answers each user turn with its own earlier answers
in view, never the corpus's (eval/conversations.py).

An adapter (a PEFT folder as the train stage writes it) is merged into its base model once, into the eval
folder, and the merged folder is served by the transformers backend.
"""

# No `from __future__ import annotations`: distilabel reads the `StepInput` hint at run time.

import json
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
from psychosafe.pipelines.tasks import earlier_turns_of
from psychosafe.pipelines.templates import turn_dicts
from psychosafe.schemas import Message, Rejected

from .records import EvalRecord


class EvalResponse(Task):
    """One chat turn: the row's system prompt, the conversation so far (the model's own earlier answers among it),
    then the prompt."""

    @property
    def inputs(self) -> list[str]:
        return ["system_prompt", "earlier_turns", "prompt"]

    def format_input(self, input: dict[str, Any]) -> list[dict[str, str]]:
        system = [{"role": "system", "content": input["system_prompt"]}] if input["system_prompt"] else []
        return system + earlier_turns_of(input) + [{"role": "user", "content": input["prompt"]}]

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
    """Fill `response` for every prompt. A conversation's user turns are answered one by one, turn k with the
    model's own answers to the turns before it in view (turn 1 persists in `out_dir`, turn k in `out_dir/turn-<k>`);
    a rerun resumes from the batches already there. Every record is returned (an empty answer is an answer to
    score) and empty ones are also listed in `rejected`; a conversation stops at an empty answer."""
    start = time.perf_counter()
    for r in records:
        system_prompt(r, variant)  # a bad variant fails before any model loads
    _claim_folder(out_dir, {"model": model_id(config), "adapter": str(adapter) if adapter else None, "variant": variant,
                            "generation": config.model_dump(mode="json", exclude={"batch_size"})})
    served = with_adapter(config, adapter, out_dir) if adapter else config
    llm = build_llm(served)
    said = {r.id: r.user_turns for r in records}
    so_far: dict[str, list[Message]] = {r.id: [] for r in records}
    answers: dict[str, dict] = {}  # id -> the row of its last answer (the empty one where a conversation stopped)
    result = GenerationResult()
    for k in range(1, max((len(t) for t in said.values()), default=0) + 1):
        asked = [r for r in records if len(said[r.id]) >= k and r.id not in answers]
        if not asked:
            break
        folder = out_dir if k == 1 else out_dir / f"turn-{k}"
        rows = [_turn_row(r, so_far[r.id], said[r.id][k - 1], variant) for r in asked]
        already = len(read_batches(folder / "batches").keys() & {row["id"] for row in rows})
        done = run_persisted(rows, lambda load: load >> EvalResponse(name="respond", llm=llm,
                                                                     input_batch_size=config.batch_size),
                             folder, name="psychosafe-eval-generate" + (f"-turn-{k}" if k > 1 else ""),
                             batch_size=config.batch_size, progress=progress,
                             label="generating" if k == 1 else f"generating turn {k}")
        result.resumed += already
        result.generated_now += len(rows) - already
        for r in asked:
            row = done[r.id]
            result.output_tokens += output_tokens(row, "respond")
            answer = (row.get("response") or "").strip()
            if answer and k < len(said[r.id]):
                so_far[r.id] += [Message(role="user", content=said[r.id][k - 1]),
                                 Message(role="assistant", content=answer)]
            else:
                answers[r.id] = row
    name = model_id(config) + (f"+adapter:{adapter}" if adapter else "")
    for r in records:
        row = answers[r.id]
        turn = len(so_far[r.id]) // 2 + 1
        generation = r.generation.model_copy(update={"model": name, "backend": config.backend,
                                                     "template_version": f"eval-{variant}", "seed": config.seed})
        record = r.model_copy(update={"earlier_turns": so_far[r.id], "prompt": said[r.id][turn - 1],
                                      "response": (row.get("response") or "").strip(), "generation": generation,
                                      "variant": variant, "adapter": str(adapter) if adapter else None})
        if not record.response:
            raw = (row.get("distilabel_metadata") or {}).get("raw_output_respond")
            where = f" to user turn {turn} of {len(said[r.id])}: the conversation stops there" \
                if len(said[r.id]) > 1 else ""
            result.rejected.append(Rejected.of(record, "eval-generate", "empty_response",
                                               f"empty response from the model{where}", raw_output=raw))
        result.records.append(record)
    result.seconds = time.perf_counter() - start
    return result


def _turn_row(record: EvalRecord, so_far: list[Message], prompt: str, variant: str) -> dict:
    """The row asking for the answer to one user turn: the system prompt for the conversation as it stands (the
    routed variant is helpful before the risk turn), the turns so far as JSON text, the turn itself."""
    partial = record.model_copy(update={"earlier_turns": so_far, "prompt": prompt, "response": ""})
    return {"id": record.id, "prompt": prompt, "system_prompt": system_prompt(partial, variant) or "",
            "earlier_turns": json.dumps(turn_dicts(so_far), ensure_ascii=False) if so_far else ""}
