"""Embedding throughput through the curation stage (CachedEmbedder: hashing, dedup of identical texts,
chunked encode with a progress bar, cache write) against raw sentence-transformers `encode` on the same
model, texts and batch size, in one run.

    python benchmarks/bench_embed.py [--texts 2000] [--batch-size 64] [--repeats 3]

Texts are distinct prompt-like sentences (so the stage cannot win by skipping repeats); each side runs
`--repeats` times, alternating, and the best time of each counts; CPU seconds are recorded beside wall
seconds because a shared machine blurs wall time. Writes
benchmarks/results/embed.json. Target: the stage keeps at least 90 % of raw throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

SUBJECTS = ["my brother", "a friend", "my partner", "my neighbour", "a coworker", "my teenager", "my dad",
            "my roommate"]
ASKS = ["How do I talk to {s} about their drinking after the party on day {i}?",
        "What should I say to {s} who seems hopeless since week {i}?",
        "Is it normal that {s} keeps a knife in the car, and how do I ask about it (case {i})?",
        "How can I help {s} stay safe tonight; it is the {i}th time this month?",
        "Where can {s} find support after what happened at school on day {i}?"]


def texts(n: int) -> list[str]:
    return [ASKS[i % len(ASKS)].format(s=SUBJECTS[(i // len(ASKS)) % len(SUBJECTS)], i=i) for i in range(n)]


def main() -> None:
    from psychosafe.core.backends import build_embedder, embedder_id
    from psychosafe.core.config import EmbedderConfig
    from psychosafe.curation import CachedEmbedder

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "embed.json")
    args = parser.parse_args()
    config = EmbedderConfig(batch_size=args.batch_size)
    model = build_embedder(config)
    sample = texts(args.texts)
    model.encode(sample[:128], batch_size=args.batch_size)  # warm-up: first-call allocations are not throughput

    raw_times, stage_times, raw_cpu, stage_cpu = [], [], [], []
    for _ in range(args.repeats):
        t, c = time.perf_counter(), time.process_time()
        model.encode(sample, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        raw_times.append(time.perf_counter() - t)
        raw_cpu.append(time.process_time() - c)
        with tempfile.TemporaryDirectory() as cache:  # a cold cache: every text is encoded
            t, c = time.perf_counter(), time.process_time()
            _, stats = CachedEmbedder(config, Path(cache), model=model).embed(sample)
            stage_times.append(time.perf_counter() - t)
            stage_cpu.append(time.process_time() - c)
            assert stats.computed == len(sample)
    raw, stage = min(raw_times), min(stage_times)
    result = {
        "embedder": embedder_id(config), "texts": len(sample), "batch_size": args.batch_size, "repeats": args.repeats,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}",
        "raw_texts_per_second": round(len(sample) / raw, 1), "stage_texts_per_second": round(len(sample) / stage, 1),
        "stage_over_raw": round(raw / stage, 3), "raw_seconds": [round(x, 2) for x in raw_times],
        "stage_seconds": [round(x, 2) for x in stage_times],
        # CPU seconds of this process (all threads): what the stage adds, less blurred by other users of the machine
        "stage_over_raw_cpu": round(min(raw_cpu) / min(stage_cpu), 3),
        "raw_cpu_seconds": [round(x, 2) for x in raw_cpu], "stage_cpu_seconds": [round(x, 2) for x in stage_cpu],
        "target": 0.9,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
