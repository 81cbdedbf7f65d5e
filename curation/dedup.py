"""Deduplication of prompts."""

from __future__ import annotations

from psychosafe.schemas import Record, normalize_prompt

from .steps import StepResult, reject


def dedup_exact(records: list[Record]) -> StepResult:
    """Keep the first record of each normalised prompt; the others point to it with `duplicate_of`."""
    seen: dict[str, str] = {}
    kept, rejected = [], []
    for r in records:
        key = normalize_prompt(r.prompt)
        if key in seen:
            rejected.append(reject(r, "dedup_exact", f"exact duplicate prompt: same normalised text as {seen[key]}",
                                   duplicate_of=seen[key]))
        else:
            seen[key] = r.id
            kept.append(r)
    return StepResult("dedup_exact", kept, rejected)
