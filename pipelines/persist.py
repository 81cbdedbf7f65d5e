"""Run a distilabel pipeline over records, persisting every finished batch into the run folder.

distilabel's own cache cannot be trusted to resume (seen with distilabel 1.5.3: a rerun after an interrupted
run can hang forever, and a SIGKILL loses what was only in memory). So the last step of every pipeline here writes each
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
from pathlib import Path
from typing import Any, Callable, ClassVar

from distilabel.pipeline import Pipeline
from distilabel.steps import LoadDataFromDicts, Step, StepInput

from psychosafe.core.executors import Executor, apply_llm_resources, current_executor, ray_pipeline, shutdown_ray
from psychosafe.core.io import write_jsonl_atomic
from psychosafe.core.progress import progress_bar
from psychosafe.errors import PsychosafeError


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
    name = hashlib.sha256("".join(sorted(r["id"] for r in rows)).encode()).hexdigest()[:16]
    return write_jsonl_atomic(out_dir / f"batch-{name}.jsonl", rows, fsync=True)


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
        watcher = threading.Thread(target=_watch, daemon=True,
                                   args=(batches, len(rows), len(rows) - len(todo), stop, progress, label))
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


def _watch(out_dir: Path, total: int, already: int, stop: threading.Event, show: bool, label: str) -> None:
    with progress_bar(label, total, show=show, completed=already) as bar:
        while not stop.wait(0.5):
            bar.update(len(read_batches(out_dir)))
        bar.update(len(read_batches(out_dir)))


def output_tokens(row: dict, step: str) -> int:
    """Output tokens distilabel counted for one row of one step."""
    stats = (row.get("distilabel_metadata") or {}).get(f"statistics_{step}") or {}
    tokens = stats.get("output_tokens") or 0
    return sum(tokens) if isinstance(tokens, list) else int(tokens)
