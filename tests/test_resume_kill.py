"""Kill a real `psychosafe rebuild` with SIGKILL part way, start it again on the same run folder, and check
that it finishes without redoing finished batches (counted: the rows generated after the restart are exactly the
ones missing at the kill) and without duplicating or losing records."""

import json
import os
import signal
import subprocess
import sys
import time

import datasets
import pytest

from psychosafe.app.serve.process import group_members as _alive_in_group  # live processes of a group

pytestmark = pytest.mark.slow

CONFIG = """name: killed
seed: 11
target: 8
benign_fraction: 0.25
generator: {backend: embedded, max_new_tokens: 16, batch_size: 2, seed: 11}
synthesis: {synthetic_fraction: 0.5, prompts_per_cell: 1, oversample: 1, max_new_tokens: 20}
critique: {max_rounds: 1, max_new_tokens: 24}
judges: [{backend: embedded, max_new_tokens: 24, temperature: 0, batch_size: 2, seed: 11}]
on_unjudged: keep
retries: 0
curation: {on_refusal_mismatch: flag, splits: {validation_per_domain: 0, test_per_domain: 0}}
"""


def _batches(run_dir):
    return sorted(run_dir.glob("synthesized/**/batches/batch-*.jsonl"))


def _ids(content: bytes) -> list[str]:
    return [json.loads(line)["id"] for line in content.decode().splitlines() if line.strip()]


def _kill_group(proc: subprocess.Popen, timeout: float = 60) -> None:
    """SIGKILL the process group: the CLI and the distilabel workers and manager it spawned (they outlive a
    killed parent otherwise), then wait until none is left running."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        proc.wait()
        if not _alive_in_group(proc.pid):
            return
        assert time.monotonic() < deadline, f"processes {_alive_in_group(proc.pid)} survived SIGKILL"
        time.sleep(0.5)


def test_a_killed_rebuild_resumes_without_redoing_or_duplicating(tmp_path):
    config = tmp_path / "killed.yaml"
    config.write_text(CONFIG)
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "psychosafe.cli", "rebuild", "--config", str(config), "--run-dir", str(run_dir)]
    env = os.environ | {"COLUMNS": "200"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)
    try:
        deadline = time.monotonic() + 900
        while not _batches(run_dir):
            assert proc.poll() is None, "the rebuild ended before writing a batch"
            assert time.monotonic() < deadline, "no batch written in 15 minutes"
            time.sleep(0.2)
    finally:
        _kill_group(proc)
    assert proc.returncode == -signal.SIGKILL
    assert not (run_dir / "synthesized" / "dataset").exists()  # it really stopped part way
    before = {p: p.read_bytes() for p in _batches(run_dir)}
    ids_before: dict = {}  # phase folder -> ids of the rows persisted there before the kill
    for path, content in before.items():
        ids_before.setdefault(path.parent, set()).update(_ids(content))

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"run folder: {run_dir}" in done.stderr

    # no row was generated twice: within each phase, every id lies in exactly one batch
    phases = {p.parent for p in _batches(run_dir)}
    for phase in phases:
        ids = [i for p in phase.glob("batch-*.jsonl") for i in _ids(p.read_bytes())]
        assert len(ids) == len(set(ids)), phase
    # the batches finished before the kill are there as they were, and what the rerun generated in an interrupted
    # phase is exactly what was missing: the rows of its new batch files are the phase's other rows
    for path, content in before.items():
        assert path.read_bytes() == content, path
    new_ids = {phase: {i for p in phase.glob("batch-*.jsonl") if p not in before for i in _ids(p.read_bytes())}
               for phase in ids_before}
    for phase, old in ids_before.items():
        everything = {i for p in phase.glob("batch-*.jsonl") for i in _ids(p.read_bytes())}
        assert not new_ids[phase] & old and old | new_ids[phase] == everything, phase
    # and the rerun says so in the manifest: it found the persisted rows and asked the model for the rest only
    stages = json.loads((run_dir / "manifest.json").read_text())["stages"]
    synthesis, generated = stages["synthesis"]["counts"]["attempts"][0], stages["generate"]["counts"]
    resumed_and_generated = {
        run_dir / "synthesized" / "prompts" / "attempt-0" / "batches": (synthesis["resumed"],
                                                                       synthesis["asked"] - synthesis["resumed"]),
        run_dir / "synthesized" / "responses" / "attempt-0" / "batches": (generated["resumed_from_batches"],
                                                                         generated["generated_now"]),
    }
    assert set(ids_before) <= set(resumed_and_generated), ids_before  # the kill fell at the first batches
    for phase, old in ids_before.items():
        assert resumed_and_generated[phase] == (len(old), len(new_ids[phase])), phase
    # nothing lost: every synthesis request and every record went through to the end
    requests = stages["synthesis"]["counts"]["requested"]
    persisted = {json.loads(line)["id"] for p in run_dir.glob("synthesized/prompts/attempt-0/batches/*.jsonl")
                 for line in p.read_text().splitlines()}
    assert len(persisted) == requests
    rows = datasets.load_from_disk(str(run_dir / "synthesized" / "dataset")).to_list()
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    assert generated["in"] == stages["balance"]["counts"]["kept"] + stages["synthesis"]["counts"]["kept"]
    assert len(rows) == generated["kept"] == stages["judge"]["counts"]["kept"]
    assert all(r["response"] and r["baseline_response"] for r in rows)
