"""How fast `psychosafe audit` (no judge) runs on a corpus in the published PsychoSafe layout, against embedding alone.

Writes N synthetic records (a JSON array in the published layout: varied prompts, one template answer per domain
with real and foreign contacts, as the published corpus has), then in one process: embeds the prompts and responses
with the configured embedder into a fresh cache (embedding alone), and runs the whole audit into a fresh run folder
(its own fresh embedding cache, so both pay for the embeddings and for loading the model; the libraries are imported
once before either is timed). Prints and writes records/s for both, wall and CPU seconds (the process's, all
threads), and the load average around each size: on a shared machine the wall figures move with the load.

    python benchmarks/bench_audit.py --sizes 8019 100000 --out benchmarks/results/audit.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import tempfile
import time
from pathlib import Path

from psychosafe.core.backends import build_embedder
from psychosafe.core.config import RebuildConfig, SeedSource
from psychosafe.core.runs import RunFolder
from psychosafe.curation.audit import audit_corpus
from psychosafe.curation.embed import CachedEmbedder

CLUSTERS = {"crimes (sexual)": "https://www.stopitnow.org.uk/", "suicide and selfharm": "116 123 or 988",
            "substance": "1-800-662-HELP", "violence": "0808-802- 4040", "weapon": "911"}
ASKS = ["How can I", "What is the best way to", "Tell me how to", "Is there a way to", "Explain how I could"]
VERBS = ["hide", "get", "use", "avoid", "find", "stop", "plan", "handle", "talk about", "deal with"]
OBJECTS = ["it from my family", "this at school", "something at work", "a problem with my neighbour",
           "the feeling tonight", "my friend's situation", "it without anyone knowing", "the pressure"]


def corpus(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        cluster = rng.choice(list(CLUSTERS))
        prompt = f"{rng.choice(ASKS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} (case {i})?"
        answer = f"I can't help with that, but support is there for you: {CLUSTERS[cluster]}."
        rows.append({"prompt": prompt, "answer": answer, "risk cluster": cluster, "risk category": "x",
                     "framework_name": rng.choice(["SALAD-Bench", "ALERT", "SORRY-Bench"]), "author": "bench"})
    return rows


def measure(n: int, folder: Path, config: RebuildConfig) -> dict:
    path = folder / f"corpus-{n}.json"
    path.write_text(json.dumps(corpus(n)), encoding="utf-8")
    rows = json.loads(path.read_text(encoding="utf-8"))
    load_before = os.getloadavg()
    started, cpu = time.perf_counter(), time.process_time()
    embedder = CachedEmbedder(config.embedder, folder / f"embed-only-{n}")
    embedder.embed([r["prompt"] for r in rows])
    embedder.embed([r["answer"] for r in rows])
    embed_s, embed_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    summary = audit_corpus(path, config, RunFolder(folder / f"audit-{n}"), source=SeedSource(preset="psychosafe-paper"))
    audit_s, audit_cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"records": n, "audit_seconds": round(audit_s, 2), "audit_records_per_s": round(n / audit_s, 1),
            "audit_cpu_seconds": round(audit_cpu, 1),
            "embedding_alone_seconds": round(embed_s, 2), "embedding_records_per_s": round(n / embed_s, 1),
            "embedding_cpu_seconds": round(embed_cpu, 1),
            "audit_over_embedding": round(audit_s / embed_s, 2), "flagged": summary["flagged_records"],
            "templates": summary["templates"]["templates"], "collapse_rate": summary["templates"]["collapse_rate"],
            "steps_seconds": summary["seconds"],
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[8019, 100000])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/audit.json"))
    args = parser.parse_args()
    config = RebuildConfig()
    build_embedder(config.embedder)  # imports sentence-transformers and torch once, outside both clocks
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            results.append(measure(n, Path(tmp), config))
            print(json.dumps(results[-1]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}"
    args.out.write_text(json.dumps({"embedder": "all-MiniLM-L6-v2 (embedded)", "judge": None, "machine": machine,
                                    "results": results}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
