"""The persisted-batch engine reads each finished batch file a bounded number of times, however many batches a phase
has and however often the progress display looks: once per phase run, for resuming, for the progress bar and for the
result together (it re-read every file twice a second, which grew with the square of a phase's size)."""

import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from distilabel.steps import Step, StepInput

from psychosafe.core.config import LLMConfig
from psychosafe.pipelines import persist
from psychosafe.pipelines.persist import BatchFolder, run_persisted, write_batch
from psychosafe.pipelines.responses import generate_responses
from psychosafe.pipelines.retries import run_with_retries
from psychosafe.schemas import Record, record_id

BATCH = 3


@pytest.fixture
def reads(monkeypatch) -> Counter:
    """batch file name -> times its rows were read."""
    counts: Counter = Counter()
    real = persist.read_batch_file

    def counting(path: Path) -> list[dict]:
        counts[path.name] += 1
        return real(path)

    monkeypatch.setattr(persist, "read_batch_file", counting)
    return counts


def _rows(n: int) -> list[dict]:
    return [{"id": f"row-{i}", "text": f"text {i}"} for i in range(n)]


def _persist(folder: Path, rows: list[dict]) -> list[Path]:
    return [write_batch(folder, rows[i:i + BATCH]) for i in range(0, len(rows), BATCH)]


def _no_pipeline(load):
    raise AssertionError("every row is persisted: no pipeline may be built")


class Upper(Step):
    """A step without a model, for a real pipeline (at module level: spawned workers import it)."""

    @property
    def inputs(self) -> list[str]:
        return ["id", "text"]

    @property
    def outputs(self) -> list[str]:
        return ["upper"]

    def process(self, inputs: StepInput):  # type: ignore[override]
        yield [row | {"upper": row["text"].upper()} for row in inputs]


@pytest.mark.parametrize("batches", [2, 40])
def test_looking_at_a_folder_often_reads_each_batch_once(tmp_path, reads, batches):
    folder = BatchFolder(tmp_path / "batches")
    rows = _rows(batches * BATCH)
    for i in range(batches):
        write_batch(folder.path, rows[i * BATCH:(i + 1) * BATCH])
        for _ in range(5):  # the progress display looks many times per batch
            folder.refresh()
    assert len(reads) == batches and set(reads.values()) == {1}
    assert folder.rows == {r["id"]: r for r in rows}


@pytest.mark.parametrize("batches", [2, 40])
def test_the_progress_watcher_reads_each_batch_once_while_batches_arrive(tmp_path, reads, monkeypatch, batches):
    monkeypatch.setattr(persist, "PROGRESS_INTERVAL_S", 0.001)
    looks = Counter()
    folder = BatchFolder(tmp_path / "batches")
    refresh = folder.refresh

    def counted_refresh():
        looks["refresh"] += 1
        return refresh()

    folder.refresh = counted_refresh
    stop = threading.Event()
    watcher = threading.Thread(target=persist._watch, args=(folder, batches * BATCH, 0, stop, False, "test"))
    watcher.start()
    rows = _rows(batches * BATCH)
    for i in range(batches):
        write_batch(folder.path, rows[i * BATCH:(i + 1) * BATCH])
        # let the watcher look at least twice before the next batch arrives
        seen = looks["refresh"]
        while looks["refresh"] < seen + 2:
            assert watcher.is_alive()
            stop.wait(0.001)
    stop.set()
    watcher.join()
    assert looks["refresh"] >= 2 * batches
    assert len(reads) == batches and set(reads.values()) == {1}
    assert len(folder.rows) == batches * BATCH


@pytest.mark.parametrize("batches", [2, 40])
def test_resume_reads_each_finished_batch_once(tmp_path, reads, batches):
    rows = _rows(batches * BATCH)
    files = _persist(tmp_path / "batches", rows)
    finished = run_persisted(rows, _no_pipeline, tmp_path, name="resume", batch_size=BATCH, progress=False)
    assert finished == {r["id"]: r for r in rows} and finished.resumed == len(rows)
    assert reads == Counter({p.name: 1 for p in files})


@pytest.mark.parametrize("batches", [2, 40])
def test_resuming_a_phase_with_retries_reads_each_finished_batch_once(tmp_path, reads, batches):
    rows = [r | {"last_error": "", "answer": "fine"} for r in _rows(batches * BATCH)]
    files = _persist(tmp_path / "attempt-0" / "batches", rows)
    config = LLMConfig(backend="openai", model="m", base_url="http://127.0.0.1:9/v1", batch_size=BATCH)
    result = run_with_retries([{k: r[k] for k in ("id", "text")} for r in rows], lambda load, llm, cfg: None,
                              config, tmp_path, step="s", error=lambda row: None, retries=2, name="n", label="l",
                              progress=False)
    assert set(result.done) == {r["id"] for r in rows} and not result.failed
    assert result.attempts == [{"asked": len(rows), "ok": len(rows), "resumed": len(rows)}]
    assert reads == Counter({p.name: 1 for p in files})


def test_resuming_the_responses_phase_reads_each_finished_batch_once(tmp_path, reads):
    records = [Record(id=record_id(f"prompt number {i}", "substance"), prompt=f"prompt number {i}", label="harmful",
                      domain="substance") for i in range(20)]
    rows = [{"id": r.id, "prompt": r.prompt, "label": r.label, "domain": r.domain, "strategy": "", "locale": "en-US",
             "last_error": "", "response": f"reply {i}", "baseline_response": "I can't help with that."}
            for i, r in enumerate(records)]
    files = _persist(tmp_path / "attempt-0" / "batches", rows)
    config = LLMConfig(backend="openai", model="m", base_url="http://127.0.0.1:9/v1", batch_size=BATCH)
    result = generate_responses(records, config, tmp_path, progress=False, baseline=True, retries=1)
    assert [r.response for r in result.records] == [f"reply {i}" for i in range(20)]
    assert (result.resumed, result.generated_now) == (20, 0)
    assert reads == Counter({p.name: 1 for p in files})


@pytest.mark.slow  # a real distilabel pipeline: spawned worker processes, no model
def test_a_real_pipeline_persists_every_batch_and_reads_each_once(tmp_path, reads):
    rows = _rows(30 * BATCH)
    finished = run_persisted(rows, lambda load: load >> Upper(name="upper", input_batch_size=BATCH), tmp_path,
                             name="upper", batch_size=BATCH, progress=True)
    assert {k: v["upper"] for k, v in finished.items()} == {r["id"]: r["text"].upper() for r in rows}
    assert finished.resumed == 0
    files = sorted((tmp_path / "batches").glob("batch-*.jsonl"))
    assert len(files) == 30 and reads == Counter({p.name: 1 for p in files})
    # distilabel's own cache (a copy of every batch of every step) is not kept once the phase is done
    assert not (tmp_path / ".distilabel").exists()
    assert persist.distilabel_base.time is time  # the short polls were for the steps' loading only
    # a second run generates nothing and reads each batch once more
    again = run_persisted(rows, _no_pipeline, tmp_path, name="upper", batch_size=BATCH, progress=False)
    assert again == finished and again.resumed == len(rows)
    assert set(reads.values()) == {2}


def test_distilabel_looks_at_its_loading_steps_every_short_poll(monkeypatch):
    """distilabel waits 2.5 s between two looks at whether its steps have loaded; ours load in a second or two."""
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    polls = persist._ShortPolls()
    polls.sleep(2.5)
    polls.sleep(0.05)
    assert slept == [persist.LOAD_POLL_S, 0.05] and polls.monotonic is time.monotonic
