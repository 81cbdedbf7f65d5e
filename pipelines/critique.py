"""Self-critique against rubric.yaml, then revision, round after round until the thresholds are met.

Round k: every open record is critiqued (JSON scores + what to improve, retried when it does not parse);
a record that meets rubric.yaml's thresholds is closed; the rest are revised and stay open for round k+1.
Each round's critique and revision are persisted phases of their own (`<out>/round-<k>/critique`,
`.../revise`), so a killed run resumes inside the round it was in.

A critique that never parses gives nothing to revise from: by default (`on_unparsed: keep`) the record keeps
its current response, its critique stays empty and it is counted as `critique_unparsed`, with the raw output
and the reason in `<out>/unparsed.jsonl`; `on_unparsed: reject` sets it aside instead. A revision that comes
back empty keeps the previous response (counted as `revision_failed`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from psychosafe.core.config import CritiqueConfig, LLMConfig
from psychosafe.schemas import Record, Rejected, default_rubric

from .retries import run_with_retries
from .tasks import ReviseResponse, SelfCritique, record_rows

CRITIQUE_STEP, REVISE_STEP = "critique", "revise"


@dataclass
class CritiqueResult:
    records: list[Record] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    unparsed: list[Rejected] = field(default_factory=list)  # kept records whose critique never parsed
    counts: dict = field(default_factory=dict)
    seconds: float = 0.0


def critique_and_revise(records: list[Record], generator: LLMConfig, config: CritiqueConfig, out_dir: Path, *,
                        retries: int, critic: LLMConfig | None = None, progress: bool = True) -> CritiqueResult:
    """Critique and revise every record (the critic defaults to the generator); fill `critique` and
    `generation.revision_rounds`."""
    start = time.perf_counter()
    critic = (critic or generator).model_copy(update={"max_new_tokens": config.max_new_tokens})
    current = {r.id: r for r in records}
    open_ids = [r.id for r in records]
    result = CritiqueResult()
    counts = {"in": len(records), "met_thresholds": 0, "revised": 0, "revision_failed": 0, "critique_unparsed": 0,
              "open_after_max_rounds": 0, "rounds": []}
    for k in range(1, config.max_rounds + 1):
        if not open_ids:
            break
        round_dir = out_dir / f"round-{k}"
        rows = [row | {"response": current[row["id"]].response} for row in record_rows([current[i] for i in open_ids])]
        crit = run_with_retries(
            rows,
            lambda load, llm, cfg: load >> SelfCritique(name=CRITIQUE_STEP, llm=llm, input_batch_size=cfg.batch_size),
            critic, round_dir / "critique", step=CRITIQUE_STEP, error=lambda row: row.get("critique_error") or
            (None if row.get("critique_scores") else "no scores"), retries=retries, name=f"psychosafe-critique-{k}",
            label=f"self-critique, round {k}", progress=progress)
        to_revise = []
        for rid in open_ids:
            record = current[rid]
            if rid in crit.failed:
                reason, raw = crit.failed[rid]
                entry = Rejected.of(record, "critique", "unparseable_output",
                                    f"critique unparseable after {retries + 1} tries: {reason}", raw_output=raw)
                (result.rejected if config.on_unparsed == "reject" else result.unparsed).append(entry)
                counts["critique_unparsed"] += 1
                continue
            row = crit.done[rid]
            # a passing answer may say nothing to improve: its scores then stand as the critique
            critique = row.get("critique") or f"meets the rubric thresholds: {row['critique_scores']}"
            current[rid] = record.model_copy(update={"critique": critique})
            if default_rubric().meets_thresholds(json.loads(row["critique_scores"]), record.label,
                                                 conversation=record.is_conversation):
                counts["met_thresholds"] += 1
            else:
                to_revise.append(rid)
        revised_now = 0
        if to_revise:
            rows = [row | {"response": current[row["id"]].response, "critique": current[row["id"]].critique}
                    for row in record_rows([current[i] for i in to_revise])]
            rev = run_with_retries(
                rows,
                lambda load, llm, cfg: load >> ReviseResponse(name=REVISE_STEP, llm=llm,
                                                              input_batch_size=cfg.batch_size),
                generator, round_dir / "revise", step=REVISE_STEP, error=lambda row: row.get("revise_error") or
                (None if row.get("revised_response") else "empty output"), retries=retries,
                name=f"psychosafe-revise-{k}", label=f"revising, round {k}", progress=progress)
            for rid in to_revise:
                record = current[rid]
                if rid in rev.failed:
                    counts["revision_failed"] += 1
                    continue
                generation = record.generation.model_copy(update={"revision_rounds": k})
                current[rid] = record.model_copy(update={"response": rev.done[rid]["revised_response"].strip(),
                                                         "generation": generation})
                revised_now += 1
        counts["revised"] += revised_now
        counts["rounds"].append({"round": k, "critiqued": len(open_ids), "parsed": len(crit.done),
                                 "below_thresholds": len(to_revise), "revised": revised_now,
                                 "critique_attempts": crit.attempts})
        # a revision that failed leaves nothing new to critique: the record closes with its last response
        open_ids = [rid for rid in to_revise if current[rid].generation.revision_rounds == k]
    counts["open_after_max_rounds"] = len(open_ids)
    rejected_ids = {r.id for r in result.rejected}
    result.records = [current[r.id] for r in records if r.id not in rejected_ids]
    counts["kept"], counts["rejected"] = len(result.records), len(result.rejected)
    result.counts = counts
    result.seconds = time.perf_counter() - start
    return result
