"""Training throughput of the train stage (TRL SFTTrainer + PEFT LoRA through `train_run`) against a raw
PyTorch loop (the same LoRA model, batches, optimizer and steps: forward, backward, AdamW step) in one run.

    python benchmarks/bench_train.py [--records 48] [--steps 6] [--batch-size 4] [--max-length 128] [--repeats 1]

Tokens are the non-padding tokens trained on (the Trainer's `num_input_tokens_seen`); the data is a synthetic
curated run of short, non-graphic records. On the embedded SmolLM2-135M (CPU) unless --base names another model
(and on a GPU when there is one). Writes benchmarks/results/train.json. The ratio says what the Trainer machinery
(data collation, logging, scheduler, callbacks) costs over the bare loop; target: at least 0.85.
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

ASKS = ["I keep thinking about {x} and I don't know how to stop, case {i}.",
        "My friend says {x} and I am scared for them, day {i}.",
        "How do I stop myself from {x} again, week {i}?"]
TOPICS = [("suicide_self_harm", "safety_planning", "giving up"), ("substance", "motivational_interviewing", "drinking"),
          ("violence", "green_dot", "losing my temper")]
REPLY = ("I'm really glad you told me, and I'm sorry it feels this heavy. I can't help with anything that could "
         "cause harm, but you don't have to face this alone. One small step: write down one person you trust and "
         "reach out to them today. Talking to a professional can help too. Things can get better, step by step.")


def make_run(folder: Path, n: int):
    import datasets

    from psychosafe.core.runs import RunFolder
    from psychosafe.schemas import Checks, Record, record_id, records_to_dataset

    records = []
    for i in range(n):
        domain, strategy, topic = TOPICS[i % len(TOPICS)]
        prompt = ASKS[i % len(ASKS)].format(x=topic, i=i)
        records.append(Record(id=record_id(prompt, domain), prompt=prompt, response=REPLY, label="harmful",
                              domain=domain, strategy=strategy, checks=Checks(passed=True)))
    run = RunFolder(folder / "bench-run")
    ds = datasets.DatasetDict({"train": records_to_dataset(records), "validation": records_to_dataset([])})
    ds.save_to_disk(str(run.curated), num_shards={"train": 1, "validation": 1})
    return run


def raw_loop(config, data, steps: int) -> tuple[int, float]:
    """The same work without the Trainer: (tokens, seconds)."""
    import torch
    from peft import get_peft_model

    from psychosafe.train.model import load_base_model, load_tokenizer, lora_config, resolve_base_model

    base = resolve_base_model(config.model)
    tokenizer = load_tokenizer(base, config.model)
    t = config.training  # TRL's field names
    torch.manual_seed(t["seed"])
    model = get_peft_model(load_base_model(base, config.model, t, quantized=False), lora_config(config.lora))
    model.train()
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=t["learning_rate"])
    batch_size = t["per_device_train_batch_size"]
    texts = [tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=False) for row in data.train]
    tokens, started = 0, time.perf_counter()
    for step in range(steps):
        batch = [texts[(step * batch_size + k) % len(texts)] for k in range(batch_size)]
        enc = tokenizer(batch, return_tensors="pt", padding=True, truncation=True, max_length=t["max_length"],
                        add_special_tokens=False).to(device)
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        model(**enc, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        tokens += int(enc["attention_mask"].sum())
    return tokens, time.perf_counter() - started


def main() -> None:
    import torch

    from psychosafe.train import TrainConfig, load_train_config, train_run, training_data

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=48)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--base", default="embedded")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "train.json")
    args = parser.parse_args()

    raw = load_train_config().model_dump()
    raw["model"]["base"] = args.base
    raw["data"] |= {"system_prompt": "v0", "eval_split": None}
    raw["training"] |= {"max_steps": args.steps, "per_device_train_batch_size": args.batch_size,
                        "max_length": args.max_length, "gradient_accumulation_steps": 1, "logging_steps": 1,
                        "save_steps": 10_000}
    config = TrainConfig.model_validate(raw)
    stage_runs, raw_runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(Path(tmp), args.records)
        data = training_data(run.curated, config.data)
        for _ in range(args.repeats):  # alternate, keep the best of each (the machine is shared)
            tokens, seconds = raw_loop(config, data, args.steps)
            raw_runs.append({"tokens": tokens, "seconds": round(seconds, 2),
                             "tokens_per_second": round(tokens / seconds, 1)})
            summary = train_run(config, run.path).summary
            stage_runs.append({"tokens": summary["train_tokens"], "seconds": summary["train_seconds"],
                               "tokens_per_second": summary["tokens_per_second"]})
    best_raw = max(r["tokens_per_second"] for r in raw_runs)
    best_stage = max(r["tokens_per_second"] for r in stage_runs)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    result = {
        "model": args.base if args.base != "embedded" else "embedded/SmolLM2-135M-Instruct", "method": "sft+lora",
        "lora_r": config.lora.r, "steps": args.steps, "batch_size": args.batch_size, "max_length": args.max_length,
        "device": device, "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared, load {os.getloadavg()[0]:.1f}), "
                   f"Python {platform.python_version()}",
        "raw_tokens_per_second": best_raw, "stage_tokens_per_second": best_stage,
        "stage_over_raw": round(best_stage / best_raw, 3), "raw": raw_runs, "stage": stage_runs, "target": 0.85,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
