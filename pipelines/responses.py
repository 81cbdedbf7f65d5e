"""The responses phase: a PsychoSafe response for every record and, beside it, the generic refusal baseline.
An empty answer is asked again (pipelines/retries.py); every batch is persisted, so a rerun resumes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from psychosafe.core.backends import build_llm, model_id
from psychosafe.core.config import LLMConfig
from psychosafe.schemas import Record, Rejected

from .parsing import GENERIC_REFUSAL
from .retries import run_with_retries
from .tasks import GenericRefusal, PsychoSafeResponse, record_rows
from .templates import TEMPLATE_VERSION

BASELINE_MAX_NEW_TOKENS = 64


@dataclass
class GenerationResult:
    records: list[Record] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    generated_now: int = 0
    resumed: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    baseline_fallbacks: int = 0  # baselines that were not a short refusal, replaced by parsing.GENERIC_REFUSAL


def generate_responses(records: list[Record], config: LLMConfig, out_dir: Path, *, name: str = "psychosafe-responses",
                       progress: bool = True, baseline: bool = False, retries: int = 0) -> GenerationResult:
    """Fill `response` for every record (and, with `baseline`, the generic refusal `baseline_response` beside
    it), resuming from the batches already under `out_dir`. An empty answer is asked again up to `retries`
    times, then the record is set aside with the raw output."""
    start = time.perf_counter()

    def connect(load, llm, cfg):
        last = load >> PsychoSafeResponse(name="respond", llm=llm, input_batch_size=cfg.batch_size)
        if not baseline:
            return last
        # a generic refusal is a sentence or two: no need to give it the response's token budget
        short = build_llm(cfg.model_copy(update={"max_new_tokens": min(cfg.max_new_tokens, BASELINE_MAX_NEW_TOKENS)}))
        return last >> GenericRefusal(name="baseline", llm=short, input_batch_size=cfg.batch_size)

    def error(row: dict) -> str | None:
        if not (row.get("response") or "").strip():
            return "empty response from the model"
        return None  # an unusable baseline is replaced below, not asked again (it would redo the response too)

    attempts = run_with_retries(record_rows(records), connect, config, out_dir, step="respond", error=error,
                                retries=retries, name=name, label="responding", progress=progress)
    already = attempts.attempts[0]["resumed"] if attempts.attempts else 0  # persisted before this call
    result = GenerationResult(generated_now=len(records) - already, resumed=already,
                              output_tokens=attempts.output_tokens)
    for r in records:
        if r.id in attempts.failed:
            reason, raw = attempts.failed[r.id]
            result.rejected.append(Rejected.of(r, "generate", "unusable_output", f"{reason} after {retries + 1} tries",
                                               raw_output=raw))
            continue
        row = attempts.done[r.id]
        generation = r.generation.model_copy(update={"model": model_id(config), "backend": config.backend,
                                                     "template_version": TEMPLATE_VERSION, "seed": config.seed})
        refusal = r.baseline_response
        if baseline:
            refusal = row.get("baseline_response") or GENERIC_REFUSAL
            result.baseline_fallbacks += not row.get("baseline_response")
        result.records.append(r.model_copy(update={"response": row["response"].strip(), "generation": generation,
                                                   "baseline_response": refusal}))
    result.seconds = time.perf_counter() - start
    return result
