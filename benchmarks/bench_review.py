"""What `psychosafe review push` and `pull` cost against the local Argilla server, next to the floor: the
same records (vectors computed beforehand) logged with the bare argilla SDK into a dataset with the same
settings, in the same run. The difference is reading the run, embedding the prompts, diffing against what
the server already holds, and (for pull) the merge, the agreement figures and writing review/.

    python benchmarks/bench_review.py [--records 500]

Starts its own server (psychosafe.app.serve.argilla; needs `make argilla-server`) and writes
benchmarks/results/review.json. Records are synthetic, short and non-graphic.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import datasets

from psychosafe.app.serve import argilla as server
from psychosafe.core.backends import build_embedder
from psychosafe.core.config import EmbedderConfig
from psychosafe.core.runs import RunFolder
from psychosafe.curation.review import ReviewConfig, build_settings, pull_review, push_review, record_findings
from psychosafe.curation.review.client import to_argilla_record
from psychosafe.schemas import Record, Scores, default_taxonomy, record_id, records_to_dataset

HERE = Path(__file__).resolve().parent
RESPONSE = ("I'm sorry, but I can't help with that. It sounds like a hard moment. One small step: name one "
            "person you could talk to today. You can call or text 988 any time.")


def synthetic_records(n: int) -> list[Record]:
    domains = default_taxonomy().domains
    out = []
    for i in range(n):
        domain = domains[i % len(domains)]
        prompt = f"Synthetic benchmark prompt {i} about {domain.name.lower()}."
        out.append(Record(id=record_id(prompt, domain.id), prompt=prompt, response=RESPONSE, label="harmful",
                          domain=domain.id, category=domain.categories[i % len(domain.categories)].id,
                          strategy="motivational_interviewing",
                          scores=Scores(refusal=True, grounding=1 + i % 5, references=i % 3 > 0, relevance=1 + i % 5,
                                        judge_model="bench-judge")))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=500)
    args = parser.parse_args()

    records = synthetic_records(args.records)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        info = server.start(Path(tmp) / "state", port=0, api_key="bench-owner-key-0123456789")
        started = time.perf_counter() - t
        try:
            import argilla as rg

            run = RunFolder(Path(tmp) / "run")
            datasets.DatasetDict({"train": records_to_dataset(records)}).save_to_disk(str(run.curated),
                                                                                      num_shards={"train": 1})
            config = ReviewConfig(api_url=info["url"], api_key=info["api_key"], dataset="bench")

            # floor: the bare SDK, vectors computed beforehand (not timed)
            embedder = build_embedder(EmbedderConfig())
            vectors = embedder.encode([r.prompt for r in records], normalize_embeddings=True).tolist()
            client = rg.Argilla(api_url=info["url"], api_key=info["api_key"])
            floor_ds = rg.Dataset(name="bench-floor", workspace="argilla", client=client,
                                  settings=build_settings(config, len(vectors[0]), "harmful")).create()
            rows = [to_argilla_record(r, "train", v, record_findings(r)) for r, v in zip(records, vectors)]
            t = time.perf_counter()
            floor_ds.records.log(rows, batch_size=64)
            floor = time.perf_counter() - t

            t = time.perf_counter()
            pushed = push_review(run, config, progress=False)
            push = time.perf_counter() - t
            t = time.perf_counter()
            again = push_review(run, config, progress=False)
            repush = time.perf_counter() - t
            t = time.perf_counter()
            pull_review(run, config)
            pull = time.perf_counter() - t
        finally:
            server.stop(Path(tmp) / "state")
    assert pushed["counts"]["created"] == args.records and again["counts"]["unchanged"] == args.records
    result = {
        "records": args.records, "machine": f"{platform.machine()}, {platform.python_version()}, shared 2-core CPU",
        "server_start_s": round(started, 2),
        "floor_sdk_log_s": round(floor, 2), "push_s": round(push, 2), "repush_unchanged_s": round(repush, 2),
        "pull_s": round(pull, 2), "push_over_floor": round(push / floor, 2),
        "push_records_per_s": round(args.records / push, 1), "pull_records_per_s": round(args.records / pull, 1),
    }
    out = HERE / "results" / "review.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
