"""Run a distilabel pipeline over records, persisting every finished batch into the run folder.

distilabel's own cache cannot be trusted to resume (ENVIRONMENT.md: a rerun after an interruption can
hang, and a SIGKILL loses what was only in memory). So the last step of every pipeline here writes each
finished batch atomically into `<out>/batches/`, and a rerun skips the records already written there:
a killed run resumes without redoing finished batches, and nothing is written twice.
"""

# No `from __future__ import annotations`: distilabel reads the `StepInput` hint at run time.

import hashlib
import json
import multiprocessing
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from distilabel.pipeline import Pipeline
from distilabel.steps import LoadDataFromDicts, Step, StepInput

from psychosafe.backends import build_llm, model_id
from psychosafe.config import LLMConfig
from psychosafe.errors import PsychosafeError
from psychosafe.schemas import Record, Rejected

from psychosafe.executors import Executor, apply_llm_resources, current_executor, ray_pipeline, shutdown_ray
from .parsing import GENERIC_REFUSAL
from .tasks import PsychoSafeResponse
from .templates import TEMPLATE_VERSION


class PersistBatches(Step):
    """Write each batch that reaches it to `out_dir` as one JSONL file, atomically (tmp + rename)."""

    out_dir: str
    runs_on_driver_node: ClassVar[bool] = True  # on a Ray cluster: where the run folder is

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    def process(self, inputs: StepInput):  # type: ignore[override]
        rows = list(inputs)
        write_batch(Path(self.out_dir), rows)
        yield rows


def write_batch(out_dir: Path, rows: list[dict]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256("".join(sorted(r["id"] for r in rows)).encode()).hexdigest()[:16]
    path = out_dir / f"batch-{name}.jsonl"
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def read_batches(out_dir: Path) -> dict[str, dict]:
    """id -> row over every finished batch (a row written twice counts once)."""
    rows: dict[str, dict] = {}
    for path in sorted(out_dir.glob("batch-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                rows.setdefault(row["id"], row)
    return rows


def run_persisted(rows: list[dict[str, Any]], connect: Callable[[LoadDataFromDicts], Step], out_dir: Path, *,
                  name: str, batch_size: int, progress: bool = True, label: str = "generating",
                  executor: Executor | None = None) -> dict[str, dict]:
    """Run `load >> connect(load) >> persist` over the rows (each with a unique "id") not yet persisted in
    `out_dir/batches`; return id -> finished row for every row.

    `connect(load)` builds the steps inside the pipeline context and returns the last one, e.g.
    `lambda load: load >> PsychoSafeResponse(llm=...)`. Raises if the run stopped before every row was done
    (an interrupted distilabel run otherwise looks successful); a rerun then resumes. `executor` (default: the
    one `use_executor` set, else local processes) decides where the pipeline runs.
    """
    batches = out_dir / "batches"
    done = read_batches(batches)
    todo = [r for r in rows if r["id"] not in done]
    if todo:
        if multiprocessing.get_start_method() == "fork":
            raise PsychosafeError("distilabel pipelines here need the 'spawn' start method (fork deadlocks after torch "
                                  "ran in this process); import psychosafe before anything sets 'fork'")
        os.environ.setdefault("DISTILABEL_LOG_LEVEL", "WARNING")
        cache_dir = out_dir / ".distilabel"
        shutil.rmtree(cache_dir, ignore_errors=True)  # never let distilabel reload its own cache
        with Pipeline(name=name, cache_dir=cache_dir) as pipeline:
            load = LoadDataFromDicts(name="load_rows", data=todo, batch_size=batch_size)
            last = connect(load)
            last >> PersistBatches(name="persist", out_dir=str(batches), input_batch_size=batch_size)
        executor = executor or current_executor()
        apply_llm_resources(pipeline, executor)
        if executor.kind == "ray":
            pipeline = ray_pipeline(pipeline, executor)
        stop = threading.Event()
        watcher = threading.Thread(target=_watch, args=(batches, len(rows), len(rows) - len(todo), stop, progress, label),
                                   daemon=True)
        watcher.start()
        try:
            pipeline.run(use_cache=False)
        finally:
            stop.set()
            watcher.join()
            if executor.kind == "ray":
                shutdown_ray()
        done = read_batches(batches)
        missing = [r["id"] for r in todo if r["id"] not in done]
        if missing:
            raise PsychosafeError(
                f"{name} stopped before the end: {len(rows) - len(missing)} of {len(rows)} rows are done "
                f"(kept in {batches}); run the same command with the same run folder to finish the rest")
    return {r["id"]: done[r["id"]] for r in rows}


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


def _pipeline_rows(records: list[Record]) -> list[dict[str, Any]]:
    # Flat string columns only: distilabel writes batches through pyarrow, which dislikes all-None structs.
    return [{"id": r.id, "prompt": r.prompt, "label": r.label, "domain": r.domain, "strategy": r.strategy,
             "locale": r.locale} for r in records]


def _watch(out_dir: Path, total: int, already: int, stop: threading.Event, show: bool, label: str) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), disable=not show, transient=False) as bar:
        task = bar.add_task(label, total=total, completed=already)
        while not stop.wait(0.5):
            bar.update(task, completed=len(read_batches(out_dir)))
        bar.update(task, completed=len(read_batches(out_dir)))


def output_tokens(row: dict, step: str) -> int:
    """Output tokens distilabel counted for one row of one step."""
    stats = (row.get("distilabel_metadata") or {}).get(f"statistics_{step}") or {}
    tokens = stats.get("output_tokens") or 0
    return sum(tokens) if isinstance(tokens, list) else int(tokens)


def generate_responses(records: list[Record], config: LLMConfig, out_dir: Path, *, name: str = "psychosafe-responses",
                       progress: bool = True, baseline: bool = False, retries: int = 0) -> GenerationResult:
    """Fill `response` for every record (and, with `baseline`, the generic refusal `baseline_response` beside
    it), resuming from the batches already under `out_dir`. An empty answer is asked again up to `retries`
    times, then the record is set aside with the raw output."""
    from .retries import run_with_retries
    from .tasks import GenericRefusal

    start = time.perf_counter()
    persisted = read_batches(out_dir / "attempt-0" / "batches")
    already = sum(1 for r in records if r.id in persisted)

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

    attempts = run_with_retries(_pipeline_rows(records), connect, config, out_dir, step="respond", error=error,
                                retries=retries, name=name, label="responding", progress=progress)
    result = GenerationResult(generated_now=len(records) - already, resumed=already,
                              output_tokens=attempts.output_tokens)
    for r in records:
        if r.id in attempts.failed:
            reason, raw = attempts.failed[r.id]
            result.rejected.append(Rejected(stage="generate", reason=f"{reason} after {retries + 1} tries", id=r.id,
                                            domain=r.domain, raw_output=raw, record=r.model_dump_json()))
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
