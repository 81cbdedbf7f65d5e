"""Run one task over rows, retrying only the rows whose answer the task could not use.

Each attempt is its own persisted phase (`<out>/attempt-<n>/batches`, through `run_persisted`), so a killed
run resumes inside the attempt it was in, and rows that succeeded are never asked again. A retry samples with
a new seed and some temperature (as the judge does: a greedy model would repeat the answer that failed) and
hands the task the reason in `last_error`, so its prompt can say what was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from psychosafe.core.backends import build_llm
from psychosafe.core.config import LLMConfig

from .persist import output_tokens, run_persisted

RETRY_TEMPERATURE = 0.7


def retry_config(config: LLMConfig, attempt: int) -> LLMConfig:
    """The model settings of attempt `attempt` (0: the first try, as configured)."""
    if attempt == 0:
        return config
    return config.model_copy(update={"temperature": max(config.temperature, RETRY_TEMPERATURE),
                                     "seed": (config.seed or 0) + 1000 * attempt})


@dataclass
class AttemptsResult:
    """`done`: id -> the row that succeeded; `failed`: id -> (reason, raw output) after the last attempt;
    `attempts`: per attempt, the rows asked, those that came out usable, and those found already persisted
    (`resumed`: a rerun of a killed run generates only the rest)."""

    done: dict[str, dict] = field(default_factory=dict)
    failed: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    attempts: list[dict] = field(default_factory=list)
    output_tokens: int = 0

    def counts(self) -> dict:
        return {"ok_first_try": self.attempts[0]["ok"] if self.attempts else 0,
                "ok_on_retry": sum(a["ok"] for a in self.attempts[1:]), "failed": len(self.failed),
                "attempts": self.attempts}


def run_with_retries(rows: list[dict[str, Any]], connect: Callable[[Any, Any, LLMConfig], Any], config: LLMConfig,
                     out_dir: Path, *, step: str, error: Callable[[dict], str | None], retries: int, name: str,
                     label: str, progress: bool = True) -> AttemptsResult:
    """`connect(load, llm, config)` builds the steps after `load` and returns the last one (as for
    `run_persisted`); `error(row)` says why a finished row cannot be used, or None; the raw output kept for a
    failed row is that of the task named `step`. Rows need a unique "id"; `last_error` is added to them."""
    result = AttemptsResult()
    todo = [r | {"last_error": ""} for r in rows]
    for attempt in range(retries + 1):
        if not todo:
            break
        cfg = retry_config(config, attempt)
        llm = build_llm(cfg)
        finished = run_persisted(todo, lambda load, llm=llm, cfg=cfg: connect(load, llm, cfg),
                                 out_dir / f"attempt-{attempt}", name=f"{name}-{attempt}", batch_size=cfg.batch_size,
                                 progress=progress, label=label if attempt == 0 else f"{label} (retry {attempt})")
        failed: dict[str, tuple[str, str | None]] = {}
        for row in todo:
            out = finished[row["id"]]
            stats = [k.removeprefix("statistics_") for k in out.get("distilabel_metadata") or {}
                     if k.startswith("statistics_")]
            result.output_tokens += sum(output_tokens(out, s) for s in stats)
            reason = error(out)
            if reason:
                failed[row["id"]] = (reason, (out.get("distilabel_metadata") or {}).get(f"raw_output_{step}"))
            else:
                result.done[row["id"]] = out
        result.attempts.append({"asked": len(todo), "ok": len(todo) - len(failed), "resumed": finished.resumed})
        result.failed = failed
        todo = [r | {"last_error": failed[r["id"]][0]} for r in todo if r["id"] in failed]
    return result
