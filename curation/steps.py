"""What a curation step is, what it returns, and the one loop that runs a list of them (datatrove-style).

A step is an object with a `name` and one method, `run(records, context) -> StepResult`: what it kept, what it set
aside with a machine-readable code (each a `Rejected`), and notes for the manifest. `run_steps` feeds each step what
the one before kept, times it, and writes its rejections (rejected/<name>.jsonl) and its counts (the manifest's
stages): no step writes into the run folder itself. The built-in steps and the list a config asks for are in
registry.py; ARCHITECTURE.md says where a new step goes.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from psychosafe.core.backends import embedder_id
from psychosafe.core.config import EmbedderConfig, RebuildConfig
from psychosafe.core.io import write_jsonl_atomic
from psychosafe.core.runs import RunFolder
from psychosafe.schemas import Record, Rejected, default_rubric

from .embed import EMBEDDINGS_DIR, CachedEmbedder

FLAGGED_DIR = "flagged"  # in the run folder: flagged/<step>.jsonl
TurnKind = Literal["prompt", "response"]  # what the user said, what the assistant said


@dataclass
class StepResult:
    name: str
    kept: list[Record]
    rejected: list[Rejected] = field(default_factory=list)
    seconds: float = 0.0
    notes: dict = field(default_factory=dict)
    filters: bool = True  # False: the step only measures (embed); it counts what came in and writes no rejected file
    flagged: list[dict] = field(default_factory=list)  # rows for a person to look at (flagged/<name>.jsonl)

    def counts(self) -> dict:
        """The manifest's counts of the step: reasons by `Rejected.code`, what was kept per domain and category,
        and the step's notes."""
        if not self.filters:
            return {"in": len(self.kept), **self.notes}
        reasons = Counter(r.code for r in self.rejected)
        return {
            "in": len(self.kept) + len(self.rejected),
            "kept": len(self.kept),
            "rejected": len(self.rejected),
            "reasons": dict(reasons),
            "kept_per_domain": dict(Counter(r.domain for r in self.kept)),
            "kept_per_category": dict(Counter(f"{r.domain}/{r.category or '-'}" for r in self.kept)),
            **self.notes,
        }


@dataclass
class CurationAnalysis:
    """What the steps measured beyond counts, for the report's plots (report.py)."""

    dedup_threshold: float | None = None
    collapse_threshold: float | None = None
    prompt_nearest: np.ndarray = field(default_factory=lambda: np.zeros(0))
    response_nearest: np.ndarray = field(default_factory=lambda: np.zeros(0))
    collapse: dict = field(default_factory=dict)
    checked: list[Record] = field(default_factory=list)


@dataclass
class StepContext:
    """What a step may use besides its records: the run's config and folder, the embeddings of prompts and
    responses (cached in the run folder by text), the analysis the report draws, and whether to show progress."""

    config: RebuildConfig
    run: RunFolder
    progress: bool = False
    analysis: CurationAnalysis = field(default_factory=CurationAnalysis)
    # the audit: every step flags instead of setting aside; what it would have set aside is kept, and collected here
    flag_only: bool = False
    flagged: list[Rejected] = field(default_factory=list)
    _embedder: CachedEmbedder | None = field(default=None, init=False, repr=False)
    _others: dict[str, CachedEmbedder] = field(default_factory=dict, init=False, repr=False)

    @property
    def embedder(self) -> CachedEmbedder:
        """The configured embedder behind the run folder's cache (its model loads on the first uncached text)."""
        if self._embedder is None:
            self._embedder = CachedEmbedder(self.config.embedder, self.run.path / EMBEDDINGS_DIR)
        return self._embedder

    def vectors(self, kind: TurnKind, records: list[Record], *, embedder: EmbedderConfig | None = None) -> np.ndarray:
        """One unit vector per record's prompt or response, in record order; a conversation's is the mean of its
        user turns' (or assistant turns') vectors, normalised (`pool_turns`). The embed step fills the cache; a text
        it did not see (a step before it changed it, or it is not in the list) is embedded now. `embedder`: another
        embedder than the run's (semantic dedup's per-language ones), cached in the same folder."""
        vectors, owners = self.turn_vectors(kind, records, embedder=embedder)
        return pool_turns(vectors, owners, len(records))

    def turn_vectors(self, kind: TurnKind, records: list[Record], *,
                     embedder: EmbedderConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(one unit vector per user turn, or per assistant turn, of the records; the index of the record each
        belongs to): `turn_texts` embedded."""
        cached = self.embedder
        if embedder is not None and embedder != self.config.embedder:
            if embedder_id(embedder) not in self._others:
                self._others[embedder_id(embedder)] = CachedEmbedder(embedder, self.run.path / EMBEDDINGS_DIR)
            cached = self._others[embedder_id(embedder)]
        texts, owners = turn_texts(records, kind)
        return cached.embed(texts, progress=self.progress, label=f"{kind}s")[0], owners


def turn_texts(records: list[Record], kind: TurnKind) -> tuple[list[str], np.ndarray]:
    """The texts of every record's turns, in order, and the index of the record each belongs to: `prompt` the user
    turns (a single prompt: the prompt), `response` the assistant turns (a record without a response: "", so every
    record has a vector). Dedup, leakage and contamination compare what the user said; template collapse what the
    assistant said, turn by turn."""
    texts, owners = [], []
    for k, r in enumerate(records):
        turns = r.user_turns if kind == "prompt" else (r.assistant_turns or [""])
        texts += turns
        owners += [k] * len(turns)
    return texts, np.array(owners, dtype=np.int64)


def pool_turns(vectors: np.ndarray, owners: np.ndarray, n: int) -> np.ndarray:
    """One unit vector per record: the normalised mean of its turns' vectors (a single turn's own vector, as is)."""
    if len(owners) == n:  # one turn each: nothing to pool
        return vectors
    summed = np.zeros((n, vectors.shape[1]), dtype=np.float32)
    np.add.at(summed, owners, vectors)
    return summed / np.maximum(np.linalg.norm(summed, axis=1, keepdims=True), 1e-12)


class Step:
    """A curation step. Subclass it (or write any class with a `name` and this `run`), then list it in the config's
    `curation.steps` by import path, "package.module:ClassName", with `params` for its constructor. Build records
    set aside with `reject(record, self.name, code, reason)`; keep the order of what you keep."""

    name: str = ""

    def run(self, records: list[Record], context: StepContext) -> StepResult:
        raise NotImplementedError


def run_steps(steps: list[Step], records: list[Record], context: StepContext) -> list[Record]:
    """Run each step on what the one before kept and record what it did; return what the last one kept. With
    `context.flag_only` (the audit) nothing is set aside: each step's rejections are collected in `context.flagged`
    and their records (as the step marked them) go on to the next step."""
    for step in steps:
        started = time.perf_counter()
        result = step.run(records, context)
        result.seconds = time.perf_counter() - started
        flagging = context.flag_only and result.filters
        counts = result.counts() | ({"flag_only": True} if flagging else {})
        record_stage(context.run, step.name, result.seconds, counts,
                     result.rejected if result.filters and not flagging else None)
        if flagging:
            context.flagged += result.rejected
            result.kept = result.kept + [_flagged_record(r) for r in result.rejected]
        write_flagged(context.run, step.name, result.flagged)
        records = result.kept
    return records


def record_stage(run: RunFolder, name: str, seconds: float, counts: dict,
                 rejected: list[Rejected] | None = None) -> None:
    """Write what a stage did into the run folder: its rejections (rejected/<name>.jsonl, rewritten whole; None for a
    stage that sets nothing aside) and its time and counts (the manifest)."""
    if rejected is not None:
        run.write_rejected(name, rejected)
    run.record_stage(name, seconds=seconds, counts=counts)


def write_flagged(run: RunFolder, name: str, rows: list[dict]) -> None:
    """flagged/<name>.jsonl: what a step kept but wants a person to look at (each row names its record `ids`, a
    `code` and `why`); rewritten whole, and removed when the step flags nothing, so a rerun leaves no stale list."""
    path = run.path / FLAGGED_DIR / f"{name}.jsonl"
    if rows:
        write_jsonl_atomic(path, rows)
    else:
        path.unlink(missing_ok=True)


def _flagged_record(rejected: Rejected) -> Record:
    """A record the audit keeps though a step would set it aside; a duplicate keeps what it duplicates."""
    record = rejected.record
    if rejected.duplicate_of and not record.checks.duplicate_of:
        record = record.model_copy(update={"checks": record.checks.model_copy(
            update={"duplicate_of": rejected.duplicate_of})})
    return record


def reject(record: Record, stage: str, code: str, reason: str, **extra) -> Rejected:
    return Rejected.of(record, stage, code, reason, **extra)


def quality(record: Record) -> float | None:
    """Overall refusal quality over the criteria the judge scored (Rubric.overall_quality, partial)."""
    return default_rubric().overall_quality(record.scores, partial=True)


def best_first(record: Record) -> tuple[float, str]:
    """Sort key: the best-scored record first (unscored last), ties by id."""
    q = quality(record)
    return (-q if q is not None else 1.0, record.id)
