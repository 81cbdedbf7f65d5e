"""Generation throughput through a vLLM server on the CPU against raw transformers `generate`, on the same
model (the embedded SmolLM2 folder), prompts and batch size, in one run.

    python benchmarks/bench_generation_vllm.py [--prompts 32] [--batch-size 8] [--max-new-tokens 64]

Needs the vLLM virtualenv (`make vllm-venv`); starts the server with psychosafe.app.serve.vllm and stops it at
the end. Three measurements: raw transformers (as in bench_generation.py); the vLLM server alone (the batch's
requests sent at once with the openai client, tokens from the server's usage counts); and our pipeline with
the `openai` backend pointed at the server. Server start-up is reported apart. Greedy on both sides, but
vLLM runs bfloat16 and the OpenAI API sends no repetition penalty, so the texts differ and tokens/s is the
comparable figure. Writes benchmarks/results/generation_vllm.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_generation import RESULTS, benchmark_rows, chats, load_average, machine, rates, run_pipeline, run_raw  # noqa: E402


def run_server_direct(base_url: str, model: str, messages: list[list[dict]], batch_size: int,
                      max_new_tokens: int) -> dict:
    """The server's own speed: each batch's requests at once, the next batch when all came back."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base_url, api_key="EMPTY")

    async def batch(chunk):
        return await asyncio.gather(*(client.chat.completions.create(
            model=model, messages=m, max_tokens=max_new_tokens, temperature=0) for m in chunk))

    async def all_batches():
        batch_s, batch_tokens, texts = [], [], []
        for i in range(0, len(messages), batch_size):
            t = time.perf_counter()
            answers = await batch(messages[i:i + batch_size])
            batch_s.append(time.perf_counter() - t)
            batch_tokens.append(sum(a.usage.completion_tokens for a in answers))
            texts += [a.choices[0].message.content or "" for a in answers]
        return batch_s, batch_tokens, texts

    batch_s, batch_tokens, texts = asyncio.run(all_batches())
    return {"batch_s": batch_s, "batch_tokens": batch_tokens, "texts": texts, **rates(batch_s, batch_tokens)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=RESULTS / "generation_vllm.json")
    args = parser.parse_args(argv)

    from psychosafe.app.serve import vllm as server
    from psychosafe.core.backends import build_llm
    from psychosafe.core.backends.embedded import SMOLLM2_NAME, ensure_smollm2
    from psychosafe.core.config import LLMConfig

    model_dir = ensure_smollm2()
    rows = benchmark_rows(args.prompts)
    messages = chats(rows, build_llm(LLMConfig(backend="embedded")))  # the task's chat, whichever backend
    result = {"benchmark": "generation: vLLM server (CPU) vs raw transformers", "model": f"embedded/{SMOLLM2_NAME}",
              "settings": {"prompts": len(rows), "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
                           "decoding": "greedy", "transformers_dtype": "float32", "vllm_dtype": "bfloat16"},
              "machine": machine(), "load_average_start": load_average()}
    raw = run_raw(model_dir, messages, args.batch_size, args.max_new_tokens)
    result["raw_transformers"] = {k: v for k, v in raw.items() if k != "texts"}
    print(f"raw transformers: {raw['steady_tok_per_s']:.1f} tok/s steady", file=sys.stderr)

    work = Path(tempfile.mkdtemp(prefix="bench-vllm-"))
    try:
        t = time.perf_counter()
        info = server.start(model_dir, state_dir=work / "server", timeout=900)
        result["vllm_server_startup_s"] = round(time.perf_counter() - t, 1)
        direct = run_server_direct(info["base_url"], info["model"], messages, args.batch_size, args.max_new_tokens)
        result["vllm_direct"] = {k: v for k, v in direct.items() if k != "texts"}
        llm = build_llm(LLMConfig(backend="openai", model=info["model"], base_url=info["base_url"],
                                  max_new_tokens=args.max_new_tokens, temperature=0, batch_size=args.batch_size))
        pipe = run_pipeline(rows, llm, args.batch_size, work / "pipeline")
        result["vllm_pipeline"] = {k: v for k, v in pipe.items() if k != "texts"}
        result["vllm_engine_threads"] = next((line.split("Reducing Torch threads")[1].strip()
                                              for line in Path(info["log"]).read_text().splitlines()
                                              if "Reducing Torch threads" in line), "as configured")
    finally:
        server.stop(work / "server")
        shutil.rmtree(work, ignore_errors=True)
    result["ratios"] = {
        "vllm_direct_vs_raw_steady": direct["steady_tok_per_s"] / raw["steady_tok_per_s"],
        "vllm_pipeline_vs_raw_steady": pipe["steady_tok_per_s"] / raw["steady_tok_per_s"],
        "vllm_pipeline_vs_vllm_direct_steady": pipe["steady_tok_per_s"] / direct["steady_tok_per_s"],
    }
    result["load_average_end"] = load_average()
    print(json.dumps(result["ratios"], indent=2), file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
