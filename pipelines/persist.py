"""Run a distilabel pipeline over records, persisting every finished batch into the run folder.

distilabel's own cache cannot be trusted to resume (seen with distilabel 1.5.3: a rerun after an interrupted
run can hang forever, and a SIGKILL loses what was only in memory). So the last step of every pipeline here writes each
finished batch atomically into `<out>/batches/`, and a rerun skips the records already written there:
a killed run resumes without redoing finished batches, and nothing is written twice.

What this costs must grow with the records, not faster (benchmarks/bench_overhead.py runs it at 8019 records):
a phase reads each finished batch file once (`BatchFolder`), whether for resuming, for the progress bar or for its
result; the persist step hands distilabel nothing back to store, and tasks do not copy their prompts into every row.
"""

# No `from __future__ import annotations`: distilabel reads the `StepInput` hint at run time.

import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable, ClassVar

import distilabel.pipeline.base as distilabel_base
from distilabel.pipeline import Pipeline, RayPipeline
from distilabel.steps import LoadDataFromDicts, Step, StepInput
from distilabel.steps.tasks import Task

from psychosafe.core.executors import Executor, apply_llm_resources, current_executor, ray_pipeline, shutdown_ray
from psychosafe.core.io import write_jsonl_atomic
from psychosafe.core.progress import progress_bar
from psychosafe.errors import PsychosafeError

PROGRESS_INTERVAL_S = 0.5


LOAD_POLL_S = 0.2


class _ShortPolls:
    """The `time` module as distilabel's pipeline sees it while its steps load: each wait between two looks at the
    steps' load status is at most LOAD_POLL_S. distilabel 1.5.3 looks every 2.5 s, and a step here loads in a second
    or two, so every pipeline waited about 2 s for nothing (a rebuild runs a dozen of them)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(min(seconds, LOAD_POLL_S))


class _WithoutOwnCache:
    """distilabel's pipeline minus its own cache, and with short waits while its steps load (`_ShortPolls`).
    After every batch of every step distilabel 1.5.3 dumps the whole pipeline (hashing it several times over), its
    batch manager and each step's batch data to disk, for a resume that cannot be trusted (module docstring) and
    that this module replaces: the cache is deleted before and after every run. That bookkeeping was most of the
    driver's CPU per batch."""

    def _cache(self) -> None:
        pass

    def _run_stage_steps_and_wait(self, stage: int) -> bool:
        original = distilabel_base.time
        distilabel_base.time = _ShortPolls()  # type: ignore[assignment]
        try:
            return super()._run_stage_steps_and_wait(stage)  # type: ignore[misc]
        finally:
            distilabel_base.time = original

    def _register_batch(self, batch) -> None:
        self._batch_manager.register_batch(batch)  # type: ignore[attr-defined]  # without writing its data


class _RayPipeline(_WithoutOwnCache, RayPipeline):
    pass


class _Pipeline(_WithoutOwnCache, Pipeline):
    def ray(self, ray_head_node_url: str | None = None, ray_init_kwargs: dict | None = None) -> RayPipeline:
        """distilabel's `Pipeline.ray`, building the Ray pipeline without the cache (distilabel builds a `RayPipeline`
        whose class cannot be swapped afterwards: CPython refuses the `__class__` assignment)."""
        pipeline = _RayPipeline(name=self.name, description=self.description, cache_dir=self._cache_dir,
                                enable_metadata=self._enable_metadata, requirements=self.requirements,
                                ray_head_node_url=ray_head_node_url, ray_init_kwargs=ray_init_kwargs)
        pipeline.dag = self.dag
        return pipeline


class PersistBatches(Step):
    """Write each batch that reaches it to `out_dir` as one JSONL file, atomically (tmp + rename). It passes nothing
    on: the rows are read back from the files, and distilabel would otherwise store them all again (parquet in its
    cache, then a copy in the datasets cache) for a Distiset nobody reads."""

    out_dir: str
    runs_on_driver_node: ClassVar[bool] = True  # on a Ray cluster: where the run folder is

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    def process(self, inputs: StepInput):  # type: ignore[override]
        write_batch(Path(self.out_dir), list(inputs))
        yield []


def write_batch(out_dir: Path, rows: list[dict]) -> Path:
    name = hashlib.sha256("".join(sorted(r["id"] for r in rows)).encode()).hexdigest()[:16]
    return write_jsonl_atomic(out_dir / f"batch-{name}.jsonl", rows, fsync=True)


def read_batch_file(path: Path) -> list[dict]:
    """The rows of one finished batch file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class BatchFolder:
    """The finished batches of one phase, read as they appear: `refresh()` reads only the files it has not read
    yet, so each file is read once however often the folder is looked at (a batch file is never rewritten: it is
    renamed into place whole, under a name fixed by its rows' ids)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, dict] = {}  # id -> row (a row written twice counts once)
        self._read: set[str] = set()

    def refresh(self) -> dict[str, dict]:
        if self.path.is_dir():
            new = sorted(e.name for e in os.scandir(self.path)
                         if e.name.startswith("batch-") and e.name.endswith(".jsonl") and e.name not in self._read)
            for name in new:
                for row in read_batch_file(self.path / name):
                    self.rows.setdefault(row["id"], row)
                self._read.add(name)
        return self.rows


def read_batches(out_dir: Path) -> dict[str, dict]:
    """id -> row over every finished batch (a row written twice counts once)."""
    return BatchFolder(out_dir).refresh()


class Finished(dict):
    """id -> finished row, as `run_persisted` returns it; `resumed`: how many were persisted before the call."""

    resumed: int = 0


def run_persisted(rows: list[dict[str, Any]], connect: Callable[[LoadDataFromDicts], Step], out_dir: Path, *,
                  name: str, batch_size: int, progress: bool = True, label: str = "generating",
                  executor: Executor | None = None) -> Finished:
    """Run `load >> connect(load) >> persist` over the rows (each with a unique "id") not yet persisted in
    `out_dir/batches`; return id -> finished row for every row.

    `connect(load)` builds the steps inside the pipeline context and returns the last one, e.g.
    `lambda load: load >> PsychoSafeResponse(llm=...)`. Raises if the run stopped before every row was done
    (an interrupted distilabel run otherwise looks successful); a rerun then resumes. `executor` (default: the
    one `use_executor` set, else local processes) decides where the pipeline runs.
    """
    batches = BatchFolder(out_dir / "batches")
    done = batches.refresh()
    todo = [r for r in rows if r["id"] not in done]
    if todo:
        if multiprocessing.get_start_method() == "fork":
            raise PsychosafeError("distilabel pipelines here need the 'forkserver' or 'spawn' start method (fork "
                                  "deadlocks after torch ran in this process); import psychosafe before anything sets "
                                  "'fork'")
        os.environ.setdefault("DISTILABEL_LOG_LEVEL", "WARNING")
        # PersistBatches hands distilabel no rows, on purpose: its "no output files, can't create a dataset" is noise
        logging.getLogger("distilabel.distiset").setLevel(logging.ERROR)
        cache_dir = out_dir / ".distilabel"
        shutil.rmtree(cache_dir, ignore_errors=True)  # never let distilabel reload its own cache
        with _Pipeline(name=name, cache_dir=cache_dir) as pipeline:
            load = LoadDataFromDicts(name="load_rows", data=todo, batch_size=batch_size)
            last = connect(load)
            last >> PersistBatches(name="persist", out_dir=str(batches.path), input_batch_size=batch_size)
        _without_raw_inputs(pipeline)
        executor = executor or current_executor()
        apply_llm_resources(pipeline, executor, batches=-(-len(todo) // batch_size))
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
        done = batches.refresh()
        missing = [r["id"] for r in todo if r["id"] not in done]
        if missing:
            raise PsychosafeError(
                f"{name} stopped before the end: {len(rows) - len(missing)} of {len(rows)} rows are done "
                f"(kept in {batches.path}); run the same command with the same run folder to finish the rest")
        shutil.rmtree(cache_dir, ignore_errors=True)  # distilabel's copies of every batch: never read again
    finished = Finished((r["id"], done[r["id"]]) for r in rows)
    finished.resumed = len(rows) - len(todo)
    return finished


def _without_raw_inputs(pipeline: Pipeline) -> None:
    """Tasks keep their raw output (a failed answer is reported with it) but not their input: the whole chat,
    system prompt included, in every persisted row was most of each batch file, and it is rebuilt from the
    templates whenever it is needed."""
    from distilabel.constants import STEP_ATTR_NAME

    for step_name in pipeline.dag:
        step = pipeline.dag.get_step(step_name)[STEP_ATTR_NAME]
        if isinstance(step, Task):
            step.add_raw_input = False


def _watch(batches: BatchFolder, total: int, already: int, stop: threading.Event, show: bool, label: str) -> None:
    """The progress bar, from the batch files: only the files that appeared since the last look are read."""
    with progress_bar(label, total, show=show, completed=already) as bar:
        while not stop.wait(PROGRESS_INTERVAL_S):
            bar.update(len(batches.refresh()))
        bar.update(len(batches.refresh()))


def output_tokens(row: dict, step: str) -> int:
    """Output tokens distilabel counted for one row of one step."""
    stats = (row.get("distilabel_metadata") or {}).get(f"statistics_{step}") or {}
    tokens = stats.get("output_tokens") or 0
    return sum(tokens) if isinstance(tokens, list) else int(tokens)
