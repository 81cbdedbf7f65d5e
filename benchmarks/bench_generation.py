"""Generation throughput: our pipeline (run_persisted + PsychoSafeResponse + the embedded BatchedTransformersLLM)
against raw transformers `generate`, on the same model, prompts, batch size and decoding, in one run.

    python benchmarks/bench_generation.py [--prompts 32] [--batch-size 8] [--max-new-tokens 64] [--repeat 2]

Writes benchmarks/results/generation.json. Greedy decoding with the pipeline's repetition penalty, so both
sides write the same text (the JSON says how much of it matched) and the token counts compare.

The pipeline pays a start-up cost the raw loop does not: distilabel spawns worker processes, each imports
the stack and loads the model. That is reported apart (`startup_s`) from steady-state throughput, which is
measured between the first and the last finished batch (the batch files' write times), so that the ratio
says what the pipeline costs per token once it runs. The raw loop's first batch is timed apart too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
REPETITION_PENALTY = 1.1  # what distilabel's TransformersLLM.generate uses unless told otherwise


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    import torch

    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__,
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def benchmark_rows(n: int, seed: int = 0) -> list[dict]:
    """n pipeline rows (prompts from the builtin seeds, all domains, strategies planned) as the rebuild makes them."""
    from psychosafe.app.rebuild import plan_strategies
    from psychosafe.core.config import SeedSource
    from psychosafe.curation import balance_domains
    from psychosafe.pipelines import import_seeds
    from psychosafe.pipelines.tasks import record_rows
    from psychosafe.schemas import default_taxonomy

    records = import_seeds([SeedSource()]).records
    picked = balance_domains(records, target=n, domains=default_taxonomy().domain_ids(), benign_fraction=0.2, seed=seed)
    rows = record_rows(plan_strategies(picked.kept))
    if len(rows) < n:
        raise SystemExit(f"only {len(rows)} seed prompts available; ask for --prompts {len(rows)} or fewer")
    return rows[:n]


def chats(rows: list[dict], llm) -> list[list[dict]]:
    """The chat messages the pipeline's task sends for each row (its own format_input, not a copy)."""
    from distilabel.pipeline import Pipeline

    from psychosafe.pipelines import PsychoSafeResponse

    with Pipeline(name="bench-chats"):  # never run: only gives the task the context it expects
        task = PsychoSafeResponse(name="respond", llm=llm)
    return [task.format_input(row) for row in rows]


def run_raw(model_dir: Path, messages: list[list[dict]], batch_size: int, max_new_tokens: int) -> dict:
    """Plain transformers: tokenizer chat template, left padding, model.generate per batch."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    load_s = time.perf_counter() - t0
    texts, batch_s, batch_tokens = [], [], []
    for i in range(0, len(messages), batch_size):
        prompts = [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True)
                   for m in messages[i:i + batch_size]]
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        t = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 repetition_penalty=REPETITION_PENALTY, pad_token_id=tok.eos_token_id)
        batch_s.append(time.perf_counter() - t)
        new = tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        texts += new
        # counted as distilabel counts output tokens: the generated text, encoded again
        batch_tokens.append(sum(len(tok.encode(x, add_special_tokens=False)) for x in new))
    return {"load_s": load_s, "batch_s": batch_s, "batch_tokens": batch_tokens, "texts": texts,
            **rates(batch_s, batch_tokens)}


def rates(batch_s: list[float], batch_tokens: list[int]) -> dict:
    total = sum(batch_tokens)
    steady_s, steady_tokens = sum(batch_s[1:]), sum(batch_tokens[1:])
    return {"tokens": total, "generate_s": sum(batch_s), "tok_per_s": total / sum(batch_s),
            "steady_tok_per_s": steady_tokens / steady_s if steady_s else None}


def run_pipeline(rows: list[dict], llm, batch_size: int, out_dir: Path, *, step_name: str = "respond") -> dict:
    """Our pipeline, exactly as the rebuild runs it; timed from the call to the last persisted batch."""
    from psychosafe.pipelines import PsychoSafeResponse
    from psychosafe.pipelines.persist import output_tokens, run_persisted

    shutil.rmtree(out_dir, ignore_errors=True)
    t0 = time.time()
    def connect(load):
        return load >> PsychoSafeResponse(name=step_name, llm=llm, input_batch_size=batch_size)

    done = run_persisted(rows, connect,
                         out_dir, name="bench-generation", batch_size=batch_size, progress=False)
    wall_s = time.time() - t0
    # Each batch file is written when its batch leaves the LLM step: their times give the steady state.
    batches = sorted((out_dir / "batches").glob("batch-*.jsonl"), key=lambda p: p.stat().st_mtime)
    finished = [p.stat().st_mtime for p in batches]
    per_batch = [sum(output_tokens(json.loads(line), step_name) for line in p.read_text().splitlines() if line.strip())
                 for p in batches]
    total = sum(per_batch)
    steady_s = finished[-1] - finished[0]
    steady = sum(per_batch[1:]) / steady_s if len(finished) > 1 and steady_s > 0 else None
    # What the run took beyond generating its tokens at the steady rate: spawn, imports, model load, teardown.
    startup_s = wall_s - total / steady if steady else None
    return {"wall_s": wall_s, "tokens": total, "tok_per_s_end_to_end": total / wall_s, "steady_tok_per_s": steady,
            "startup_s": startup_s, "first_batch_after_s": finished[0] - t0, "batches": len(batches),
            "texts": [done[r["id"]].get("response") or "" for r in rows]}


def same_text(a: list[str], b: list[str]) -> float:
    return sum(x.strip() == y.strip() for x, y in zip(a, b)) / max(len(a), 1)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=2, help="alternate raw and pipeline this many times")
    parser.add_argument("--out", type=Path, default=RESULTS / "generation.json")
    args = parser.parse_args(argv)

    from psychosafe.core.backends import build_llm
    from psychosafe.core.backends.embedded import SMOLLM2_NAME, ensure_smollm2
    from psychosafe.core.config import LLMConfig

    model_dir = ensure_smollm2()
    rows = benchmark_rows(args.prompts)
    llm = build_llm(LLMConfig(backend="embedded", max_new_tokens=args.max_new_tokens, temperature=0,
                              batch_size=args.batch_size))
    messages = chats(rows, llm)
    result = {"benchmark": "generation: pipeline vs raw transformers", "model": f"embedded/{SMOLLM2_NAME}",
              "settings": {"prompts": len(rows), "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
                           "decoding": f"greedy, repetition_penalty {REPETITION_PENALTY}", "dtype": "float32"},
              "machine": machine(), "load_average_start": load_average(), "rounds": []}
    work = Path(tempfile.mkdtemp(prefix="bench-generation-"))
    try:
        for i in range(args.repeat):
            raw = run_raw(model_dir, messages, args.batch_size, args.max_new_tokens)
            print(f"round {i + 1}: raw transformers {raw['steady_tok_per_s']:.1f} tok/s steady", file=sys.stderr)
            pipe = run_pipeline(rows, llm, args.batch_size, work / f"pipeline-{i}")
            round_ = {"raw": {k: v for k, v in raw.items() if k != "texts"},
                      "pipeline": {k: v for k, v in pipe.items() if k != "texts"},
                      "same_text_fraction": same_text(raw["texts"], pipe["texts"]),
                      "load_average": load_average()}
            round_["steady_ratio"] = pipe["steady_tok_per_s"] / raw["steady_tok_per_s"]
            round_["end_to_end_ratio"] = pipe["tok_per_s_end_to_end"] / raw["tok_per_s"]
            result["rounds"].append(round_)
            print(f"round {i + 1}: raw {raw['steady_tok_per_s']:.1f} tok/s steady, pipeline "
                  f"{pipe['steady_tok_per_s']:.1f} tok/s steady ({round_['steady_ratio']:.1%}); pipeline start-up "
                  f"{pipe['startup_s']:.1f} s; end to end {round_['end_to_end_ratio']:.1%}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best = max(result["rounds"], key=lambda r: r["steady_ratio"])
    result["summary"] = {
        "steady_ratio_median": sorted(r["steady_ratio"] for r in result["rounds"])[len(result["rounds"]) // 2],
        "steady_ratio_best": best["steady_ratio"],
        "raw_steady_tok_per_s": [round(r["raw"]["steady_tok_per_s"], 1) for r in result["rounds"]],
        "pipeline_steady_tok_per_s": [round(r["pipeline"]["steady_tok_per_s"], 1) for r in result["rounds"]],
        "pipeline_startup_s": [round(r["pipeline"]["startup_s"], 1) for r in result["rounds"]],
    }
    return write_result(result, args.out)


def write_result(result: dict, out: Path) -> dict:
    """Close a benchmark's result with the load average and write it as JSON."""
    result["load_average_end"] = load_average()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return result


if __name__ == "__main__":  # spawned distilabel workers re-import this file
    main()
