"""Two CPU models in one pipeline: cores shared out (psychosafe.core.executors.share_cpu_threads) against torch's
default of every core in each step's process, on the rebuild's responses + baselines pipeline, in one run.

    python benchmarks/bench_threads.py [--prompts 20] [--batch-size 5] [--max-new-tokens 120] [--repeat 2]

Writes benchmarks/results/threads.json. The two arms alternate, so a change in the machine's load hits both.
Sampling is seeded: both arms write the same text when the thread count does not change the arithmetic
(the JSON says how much matched).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench_generation import RESULTS, benchmark_rows, load_average, machine, same_text, write_result


def run_arm(records, config, out_dir: Path, *, shared: bool) -> dict:
    import psychosafe.core.executors as executors
    from psychosafe.pipelines import generate_responses

    share = executors.share_cpu_threads
    if not shared:
        executors.share_cpu_threads = lambda llms, **_: None  # torch's default: every core in every process
    try:
        shutil.rmtree(out_dir, ignore_errors=True)
        t0 = time.perf_counter()
        result = generate_responses(records, config, out_dir, progress=False, baseline=True, retries=0)
        wall_s = time.perf_counter() - t0
    finally:
        executors.share_cpu_threads = share
    return {"wall_s": wall_s, "output_tokens": result.output_tokens, "tok_per_s": result.output_tokens / wall_s,
            "baseline_fallbacks": result.baseline_fallbacks,
            "texts": [r.response + "\n" + (r.baseline_response or "") for r in result.records]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=120)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "threads.json")
    args = parser.parse_args(argv)

    from psychosafe.core.config import LLMConfig
    from psychosafe.schemas import Record

    rows = benchmark_rows(args.prompts)
    bench = {"category": "bench", "intent": "bench"}
    records = [Record.model_validate({k: v for k, v in row.items() if v is not None} | bench)
               for row in rows]
    config = LLMConfig(backend="embedded", max_new_tokens=args.max_new_tokens, temperature=0.7, seed=11,
                       batch_size=args.batch_size)
    result = {"benchmark": "responses + baselines pipeline: CPU cores shared between the two model steps, or not",
              "settings": {"prompts": len(records), "batch_size": args.batch_size,
                           "max_new_tokens": args.max_new_tokens, "decoding": "sampled, seed 11"},
              "machine": machine(), "load_average_start": load_average(), "rounds": []}
    work = Path(tempfile.mkdtemp(prefix="bench-threads-"))
    try:
        for i in range(args.repeat):
            arms = {}
            for name, shared in (("every_core_each", False), ("shared", True)):
                arms[name] = run_arm(records, config, work / f"{name}-{i}", shared=shared)
                print(f"round {i + 1} {name}: {arms[name]['wall_s']:.1f} s, {arms[name]['tok_per_s']:.1f} tok/s",
                      file=sys.stderr)
            round_ = {name: {k: v for k, v in arm.items() if k != "texts"} for name, arm in arms.items()}
            round_["speedup"] = arms["every_core_each"]["wall_s"] / arms["shared"]["wall_s"]
            round_["same_text_fraction"] = same_text(arms["every_core_each"]["texts"], arms["shared"]["texts"])
            round_["load_average"] = load_average()
            result["rounds"].append(round_)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    speedups = sorted(r["speedup"] for r in result["rounds"])
    result["summary"] = {"speedup_median": speedups[len(speedups) // 2], "speedups": [round(s, 3) for s in speedups]}
    return write_result(result, args.out)


if __name__ == "__main__":  # spawned distilabel workers re-import this file
    main()
