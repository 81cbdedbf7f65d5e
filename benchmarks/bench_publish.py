"""What `psychosafe publish --dry-run` costs at the paper's scale (8019 records), against the floor: writing
the same splits to parquet with datasets alone, measured in the same run. The difference is the guards,
the record validation and the dataset card (every table computed from the records).

    python benchmarks/bench_publish.py [--records 8019] [--repeats 3]

Writes benchmarks/results/publish.json. Records are synthetic, short and non-graphic (no model runs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import datasets

from psychosafe.core.runs import RunFolder
from psychosafe.curation.checks import check_record
from psychosafe.curation.publish import PublishConfig, build_publish_folder
from psychosafe.schemas import Record, default_taxonomy, record_id, records_to_dataset
from psychosafe.schemas.records import Review

HERE = Path(__file__).resolve().parent
RESPONSE = ("I'm sorry, but I can't help with that. It sounds like a hard moment. One small step: name one "
            "person you could talk to today. You can call or text 988 any time. You don't have to face this alone.")


def synthetic_run(path: Path, n: int) -> RunFolder:
    domains = default_taxonomy().domains
    records = []
    for i in range(n):
        domain = domains[i % len(domains)]
        prompt = f"Synthetic benchmark prompt {i} about {domain.name.lower()}."
        records.append(check_record(Record(
            id=record_id(prompt, domain.id), prompt=prompt, response=RESPONSE, label="harmful", domain=domain.id,
            category=domain.categories[i % len(domain.categories)].id, strategy="psychological_first_aid",
            review=Review(status="accepted", annotator_count=2))))
    run = RunFolder(path)
    run.start(config={"name": "bench"}, models={"generator": "none"}, seed=0)
    held = 100 * len(domains)
    splits = {"train": records[2 * held:], "validation": records[:held], "test": records[held:2 * held]}
    datasets.DatasetDict({k: records_to_dataset(v) for k, v in splits.items()}).save_to_disk(
        str(run.curated), num_shards={k: 1 for k in splits})
    return run


def measure(n: int, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        run = synthetic_run(Path(tmp) / "run", n)
        raw, ours = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            for name, split in datasets.load_from_disk(str(run.curated)).items():
                split.to_parquet(str(Path(tmp) / f"{name}.parquet"))
            raw.append(time.perf_counter() - t)
            t = time.perf_counter()
            result = build_publish_folder(run.path, "bench/psychosafe", PublishConfig())
            ours.append(time.perf_counter() - t)
        card_bytes = (result.folder / "README.md").stat().st_size
    return {"records": n, "repeats": repeats, "raw_parquet_s": round(min(raw), 3),
            "publish_dry_run_s": round(min(ours), 3),
            "ratio_to_raw": round(min(ours) / min(raw), 1), "records_per_s": round(n / min(ours)),
            "card_bytes": card_bytes, "files": len(result.files),
            "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                        "datasets": datasets.__version__, "cores": os.cpu_count(),
                        "load_average_1m": round(os.getloadavg()[0], 1)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=8019)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    datasets.disable_progress_bars()
    result = measure(args.records, args.repeats)
    out = HERE / "results" / "publish.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
