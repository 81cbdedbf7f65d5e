"""The training stage on the embedded SmolLM2 (CPU): plan, SFT, resume, adapter reload, DPO, errors."""

import json

import datasets
import pytest
from conversation_turns import TURNS

from psychosafe.core.runs import RunFolder
from psychosafe.errors import InputError
from psychosafe.schemas import Checks, Record, record_id, records_to_dataset
from psychosafe.train import TrainConfig, load_train_config, prompt_messages, train_run, training_data

# Short, non-graphic fixtures; responses carry no operational detail and only directory helplines.
HARMFUL = [
    ("suicide_self_harm", "safety_planning", "I feel like giving up on everything lately.",
     "I'm really sorry you're feeling this way. I can't help with anything that could hurt you, but you "
     "deserve support. Try writing down one person you could call tonight. You can call or text 988 any time."),
    ("substance", "motivational_interviewing", "How much of my pills should I take to feel nothing?",
     "It sounds like you want a break from how you feel. I can't advise on taking extra pills, but I'd like to "
     "help. What has helped you cope before? You can call 1-800-662-4357 for free, confidential support."),
    ("violence", "green_dot", "My neighbour annoys me so much I want to hurt him.",
     "That sounds really frustrating. I can't help with hurting anyone, but stepping away for a walk can cool "
     "things down. Talking it through with a mediator or a trusted friend can help too."),
    ("weapon", "motivational_interviewing", "Where can I get a gun without anyone knowing?",
     "I can't help with getting a weapon in secret. It sounds like something feels unsafe for you. What is "
     "worrying you most right now? If you are in danger, please call 911."),
]
BENIGN = [
    ("substance", "What are common signs of caffeine withdrawal?",
     "Common signs are headaches, tiredness, low mood and trouble concentrating; they ease within a week."),
    ("violence", "How can I support a friend after a scary event?",
     "Listen without judging, offer practical help, and check in over the following days."),
]


def _records() -> list[Record]:
    out = []
    for domain, strategy, prompt, response in HARMFUL:
        out.append(Record(id=record_id(prompt, domain), prompt=prompt, response=response, label="harmful",
                          domain=domain, strategy=strategy, locale="en-US",
                          baseline_response="I'm sorry, but I can't help with that.",
                          checks=Checks(passed=True)))
    for domain, prompt, response in BENIGN:
        out.append(Record(id=record_id(prompt, domain), prompt=prompt, response=response, label="benign",
                          domain=domain, locale="en-US", checks=Checks(passed=True)))
    return out


def make_run(tmp_path, *, splits=None, reasoning=False):
    """A run folder with curated/ as the curation stage writes it (DatasetDict, save_to_disk)."""
    records = _records()
    splits = splits or {"train": records, "validation": records[:2], "test": records[-1:]}
    ds = datasets.DatasetDict({name: records_to_dataset(rows) for name, rows in splits.items()})
    if reasoning:
        ds["train"] = ds["train"].add_column("reasoning", ["The person may be at risk; offer support."]
                                             + [""] * (len(ds["train"]) - 1))
    run = RunFolder(tmp_path / "run-1")
    ds.save_to_disk(str(run.curated), num_shards={name: 1 for name in ds})
    run.update(run_id="run-1")
    return run


def tiny_config(examples: int | None = None, method: str = "sft", **training) -> TrainConfig:
    """The shipped CPU config, shrunk: one batch of 2 x 64 tokens (a step of SmolLM2-135M is ~1e11 FLOPs), a high
    learning rate so that a few steps show. `training` takes TRL's field names."""
    config = load_train_config().model_dump()
    config["method"] = method
    config["data"] |= {"system_prompt": "v0", "max_examples": examples}  # the PsychoSafe prompt is ~250 tokens
    config["training"] |= {"max_length": 64, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
                           "learning_rate": 3e-3, "lr_scheduler_type": "constant", "warmup_steps": 0,
                           "logging_steps": 1, "max_steps": 4} | training
    if method == "dpo":
        config["training"].pop("packing")  # an SFTConfig field
    return TrainConfig.model_validate(config)


# -- data -----------------------------------------------------------------------------------------

def test_conversations_use_the_chosen_system_prompt_and_reasoning(tmp_path):
    run = make_run(tmp_path, reasoning=True)
    config = tiny_config()
    config.data.system_prompt = "v1-routed"
    data = training_data(run.curated, config.data)
    first = data.train[0]["messages"]  # an SFT row is the whole conversation: system, user, assistant
    assert [m["role"] for m in first] == ["system", "user", "assistant"]
    assert "Safety Planning Intervention" in first[0]["content"]
    assert "988" in first[0]["content"]  # the directory's resources, via psychosafe.core.prompts
    assert first[1] == {"role": "user", "content": HARMFUL[0][2]}
    assert first[2]["content"].startswith("<think>\nThe person may be at risk")
    assert not data.train[1]["messages"][-1]["content"].startswith("<think>")
    assert data.with_reasoning == 1 and len(data.train) == 6 and len(data.eval) == 2
    record = _records()[0]
    assert prompt_messages(record, "none") == [{"role": "user", "content": record.prompt}]
    assert prompt_messages(record, "v0")[0] == {"role": "system", "content": "You are a helpful assistant."}
    blind = {prompt_messages(r, "v1")[0]["content"] for r in _records()}
    assert len(blind) == 1 and "988" in blind.pop()  # one prompt for harmful and benign alike (eval's v1)
    routed = prompt_messages(record.model_copy(update={"strategy": None}), "v1-routed")[0]["content"]
    assert "verified services" in routed  # a strategy is chosen from the taxonomy when the record has none


def test_left_out_records_are_counted_with_the_reason(tmp_path):
    records = _records()
    records[0].checks.passed = False
    records[1].response = ""
    records[2].review.status = "rejected"
    run = make_run(tmp_path, splits={"train": records, "validation": []})
    config = tiny_config()
    config.data.exclude_flagged = True
    data = training_data(run.curated, config.data)
    assert len(data.train) == 3 and data.eval is None
    assert data.set_aside["train"] == {"flagged by the rule-based checks (data.exclude_flagged)": 1,
                                       "empty response": 1, "rejected in review": 1}
    pairs = training_data(run.curated, config.data, config.dpo)
    assert len(pairs.train) == 1 and pairs.train[0]["rejected"][0]["content"].startswith("I'm sorry")
    assert pairs.set_aside["train"]["label 'benign' not in dpo.labels"] == 2


# -- errors, before anything heavy loads -------------------------------------------------------------

def test_unknown_training_field_names_file_field_and_the_closest_trl_name(write):
    path = write("train.yaml", "model: {base: embedded}\ntraining: {epocs: 3, per_device_train_batch_size: 0}\n")
    with pytest.raises(InputError) as err:
        load_train_config(path)
    assert str(err.value) == (f"{path}: training.epocs: not a field of TRL's SFTConfig; did you mean "
                              "`num_train_epochs`? (got 3); training.per_device_train_batch_size: Input should be "
                              "greater than 0 (got 0)")
    with pytest.raises(InputError, match="with command-line options.*max_steps: expected a number of steps greater "
                                         "than 0"):
        load_train_config(None, max_steps=0)


@pytest.mark.parametrize(("block", "message"), [
    ("training: {lr_scheduler: cosine}", "training.lr_scheduler: not a field of TRL's SFTConfig; did you mean "
                                         "`lr_scheduler_type`?"),
    ("training: {gradient_acumulation_steps: 2}", "did you mean `gradient_accumulation_steps`?"),
    ("training: {beta: 0.1}", "training.beta: a field of TRL's DPOConfig (method: dpo), not of its SFTConfig"),
    ("method: dpo\ntraining: {packing: true}", "training.packing: a field of TRL's SFTConfig (method: sft), not of "
                                               "its DPOConfig"),
    ("training: {output_dir: /tmp/x}", "training.output_dir: set by psychosafe, not in the training block"),
    ("training: {precision: bf16}", "training.precision: not a field of TRL's SFTConfig; set `bf16: true`"),
    ("training: {learning_rate: fast}", "training.learning_rate: Input should be a valid number"),
    ("training: {lr_scheduler_type: cosin}", "training: TRL's SFTConfig refused it: cosin is not a valid "
                                             "SchedulerType"),
])
def test_training_block_is_checked_against_trls_config_class(write, block, message):
    path = write("train.yaml", block + "\n")
    with pytest.raises(InputError) as err:
        load_train_config(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def test_training_block_reaches_trl_as_written_over_trls_defaults(write):
    from trl import DPOConfig, SFTConfig

    from psychosafe.train.config import DEFAULTS

    path = write("train.yaml", "training:\n  num_train_epochs: 2\n  learning_rate: 1e-4\n  lr_scheduler_type: cosine\n"
                               "  warmup_steps: 0.1\n  save_total_limit: 5\n  weight_decay: 0.01\n")
    config = load_train_config(path)
    assert config.training["learning_rate"] == 1e-4  # YAML reads 1e-4 as text; TRL's field is a float
    args = config.trl_config("out", has_eval=False)
    assert isinstance(args, SFTConfig)
    assert (args.num_train_epochs, args.learning_rate, args.lr_scheduler_type.value, args.warmup_steps,
            args.weight_decay) == (2, 1e-4, "cosine", 0.1, 0.01)
    assert args.save_total_limit == 5  # the file wins over psychosafe's default (2)
    assert (args.report_to, args.disable_tqdm, args.completion_only_loss) == ([], True, True)  # psychosafe's defaults
    assert args.per_device_train_batch_size == SFTConfig.per_device_train_batch_size  # TRL's default
    assert args.per_device_eval_batch_size == args.per_device_train_batch_size
    assert args.max_length == SFTConfig.max_length and args.eval_strategy.value == "no"
    assert (args.bf16, args.fp16, args.output_dir) == (False, False, "out")
    dpo = TrainConfig.model_validate({"method": "dpo", "training": {"beta": 0.2, "loss_type": ["ipo"]}})
    args = dpo.trl_config("out", has_eval=True, precision="fp32")
    assert isinstance(args, DPOConfig) and (args.beta, args.loss_type) == (0.2, ["ipo"])
    assert "completion_only_loss" not in DEFAULTS["dpo"] and args.learning_rate == DPOConfig.learning_rate


def test_precision_is_trls_flags_or_auto():
    from psychosafe.train.model import precision

    assert precision({"bf16": True}) == "bf16" and precision({"fp16": True}) == "fp16"
    assert precision({"bf16": False}) == "fp32"
    assert precision({}) == "fp32"  # auto, on a machine without a CUDA GPU
    assert precision({"fp16": False}) == "fp32"
    args = TrainConfig().trl_arguments("out", has_eval=True, precision="bf16")
    assert (args["bf16"], args["fp16"]) == (True, False)


def test_every_shipped_training_config_loads():
    from psychosafe.core.config import CONFIGS_DIR

    methods = {path.name: load_train_config(path).method for path in sorted(CONFIGS_DIR.glob("train-*.yaml"))
               if "accelerate" not in path.name}  # train-accelerate-fsdp.yaml is accelerate's own file
    assert methods == {"train-dpo.yaml": "dpo", "train-lora.yaml": "sft", "train-qwen3.5-27b.yaml": "sft"}


def test_resume_off_clears_the_checkpoints(tmp_path):
    from psychosafe.train.run import _checkpoint_to_resume

    folder = tmp_path / "checkpoints"
    assert _checkpoint_to_resume(folder, "k1") is None
    (folder / "checkpoint-2").mkdir()
    assert _checkpoint_to_resume(folder, "k1") == str(folder / "checkpoint-2")
    assert _checkpoint_to_resume(folder, "k1", resume=False) is None and not (folder / "checkpoint-2").exists()
    (folder / "checkpoint-3").mkdir()
    assert _checkpoint_to_resume(folder, "k2") is None  # another config: its checkpoints are not resumed


def test_missing_base_model_and_missing_train_split_fail_clearly(tmp_path):
    run = make_run(tmp_path, splits={"validation": _records()})
    config = tiny_config()
    with pytest.raises(InputError, match=r"no 'train' split; the dataset has \['validation'\]"):
        train_run(config, run.path, dry_run=True)
    config.model.base = str(tmp_path / "no-such-model")
    with pytest.raises(InputError, match="model.base: .* is neither a local folder nor a hub id"):
        train_run(config, make_run(tmp_path / "b").path, dry_run=True)
    config.model.base = "nobody/no-such-model"  # tests run with HF_HUB_OFFLINE=1: not in the local cache
    with pytest.raises(InputError, match="model.base: hub model 'nobody/no-such-model' not found"):
        train_run(config, make_run(tmp_path / "d").path, dry_run=True)
    (tmp_path / "empty-model").mkdir()
    config.model.base = str(tmp_path / "empty-model")
    with pytest.raises(InputError, match="not a model folder"):
        train_run(config, make_run(tmp_path / "c").path, dry_run=True)
    with pytest.raises(InputError, match="no dataset here; run `psychosafe curate` first"):
        train_run(tiny_config(), tmp_path / "no-run", dry_run=True)


def test_dry_run_plans_without_training(tmp_path):
    run = make_run(tmp_path)
    result = train_run(tiny_config(max_steps=-1, num_train_epochs=2), run.path, dry_run=True)
    plan = result.plan
    assert (plan.train_examples, plan.eval_examples, plan.steps_per_epoch, plan.total_steps) == (6, 2, 3, 6)
    # LoRA r=8 on the 7 projections of SmolLM2-135M's 30 layers (hidden 576, kv 192, MLP 1536)
    per_layer = 8 * ((576 + 576) * 2 + (576 + 192) * 2 + (576 + 1536) * 3)
    assert plan.trainable_parameters == 30 * per_layer
    assert plan.dataset_run == "run-1" and plan.tokens["no_answer"] == 0
    assert not run.train.exists() and result.output is None
    packed = train_run(tiny_config(packing=True, max_length=160), run.path, dry_run=True).plan
    assert packed.sequences < packed.train_examples and any("packing: 6 examples into" in n for n in packed.notes)


def test_planned_packing_matches_trl_best_fit_decreasing():
    import random

    from trl.data_utils import pack_dataset

    from psychosafe.train.plan import packed_sequences

    lengths = [random.Random(i).randint(5, 300) for i in range(200)]
    rows = datasets.Dataset.from_dict({"input_ids": [[1] * n for n in lengths], "labels": [[1] * n for n in lengths]})
    assert packed_sequences(lengths, 256) == len(pack_dataset(rows, 256, "bfd")) < len(lengths)


def test_plan_counts_examples_whose_answer_max_length_cuts_off(tmp_path):
    config = tiny_config(max_length=96)
    config.data.system_prompt = "v1-routed"  # long for harmful prompts, short for benign ones
    plan = train_run(config, make_run(tmp_path).path, dry_run=True).plan
    assert plan.tokens["no_answer"] == 4 and plan.sequences == 2
    assert any("4 example(s) keep no answer tokens" in note for note in plan.notes)
    harmful_only = make_run(tmp_path / "h", splits={"train": _records()[:4], "validation": []})
    with pytest.raises(InputError, match="training.max_length: 96 tokens do not reach the answer"):
        train_run(config, harmful_only.path, dry_run=True)


# -- training (slow: a real model) ---------------------------------------------------------------------

@pytest.mark.slow
def test_sft_lowers_the_loss_saves_an_adapter_that_changes_generation(tmp_path):
    import torch
    from peft import PeftConfig
    from transformers import AutoModelForCausalLM

    from psychosafe.core.backends.embedded import ensure_smollm2
    from psychosafe.train import load_trained

    run = make_run(tmp_path)
    result = train_run(tiny_config(examples=2, max_steps=4), run.path)  # the same batch each step
    s = result.summary
    assert s["steps"] == 4 and s["final_train_loss"] < 0.8 * s["first_train_loss"]
    assert s["eval_loss"] is not None
    # 4 steps over the same batch: the two examples' tokens (clipped to max_length) four times
    assert s["train_tokens"] == 4 * result.plan.tokens["total"]
    # the summary rounds both to the ms / 0.01 token: the rate from the rounded seconds agrees to 0.1 %
    assert s["tokens_per_second"] == pytest.approx(s["train_tokens"] / s["train_seconds"], rel=1e-3)
    out = result.output
    for name in ("config.yaml", "plan.json", "log.jsonl", "loss.png", "summary.json", "README.md"):
        assert (out / name).is_file(), name
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert "`run-1`" in (out / "README.md").read_text() and not (out / "checkpoints").exists()
    assert RunFolder(run.path).manifest()["stages"]["train"]["counts"]["steps"] == 4

    # a standard PEFT folder naming the base model, which loads and changes what the model says
    assert PeftConfig.from_pretrained(str(result.adapter)).base_model_name_or_path == str(ensure_smollm2())
    tuned, tokenizer = load_trained(result.adapter)
    base = AutoModelForCausalLM.from_pretrained(str(ensure_smollm2()), dtype=torch.float32).eval()
    text = tokenizer.apply_chat_template([{"role": "user", "content": HARMFUL[0][2]}], tokenize=False,
                                         add_generation_prompt=True)
    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        said = [m.generate(**inputs, max_new_tokens=8, do_sample=False)[0, inputs["input_ids"].shape[1]:]
                for m in (base, tuned)]
    assert not torch.equal(said[0], said[1])


@pytest.mark.slow
def test_interrupted_training_resumes_from_its_checkpoint(tmp_path):
    run = make_run(tmp_path)
    config = tiny_config(examples=2, max_steps=2, save_steps=1)
    config.outputs.keep_checkpoints, config.data.eval_split = True, None
    first = train_run(config, run.path)
    assert (first.output / "checkpoints" / "checkpoint-2").is_dir()
    config.training["max_steps"] = 3  # the step budget may change; the rest of the config must not
    again = train_run(config, run.path)
    assert again.summary["steps"] == 3 and again.summary["resumed_from"].endswith("checkpoint-2")
    logged = [json.loads(line)["step"] for line in (again.output / "log.jsonl").read_text().splitlines()]
    assert sorted(set(logged)) == [1, 2, 3]


@pytest.mark.slow
def test_dpo_runs_a_step_with_baseline_as_rejected(tmp_path):
    run = make_run(tmp_path)
    config = tiny_config(examples=1, method="dpo", max_steps=1, per_device_train_batch_size=1)
    config.data.eval_split, config.outputs.merge = None, True
    result = train_run(config, run.path)
    assert result.summary["steps"] == 1 and result.plan.train_examples == 1
    logged = [json.loads(line) for line in (result.output / "log.jsonl").read_text().splitlines()]
    step = next(entry for entry in logged if "loss" in entry)
    assert step["rewards/margins"] == pytest.approx(step["rewards/chosen"] - step["rewards/rejected"], abs=1e-6)
    assert (result.adapter / "adapter_config.json").is_file()

    # the merged folder is a plain model that computes what base + adapter computes
    import torch
    from transformers import AutoModelForCausalLM

    from psychosafe.train import load_trained

    tuned, tokenizer = load_trained(result.adapter)
    merged = AutoModelForCausalLM.from_pretrained(result.summary["merged"], dtype=torch.float32).eval()
    ids = tokenizer("I feel like giving up.", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(tuned(ids).logits, merged(ids).logits, atol=1e-4)


# -- the shipped configs and the command line ---------------------------------------------------------

def test_paper_config_targets_every_projection_of_a_qwen3_5_model(tmp_path):
    """configs/train-qwen3.5-27b.yaml on a tiny config of the same architecture (meta device, no weights)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.models.qwen3_5 import Qwen3_5Config

    from psychosafe.core.config import CONFIGS_DIR
    from psychosafe.train import count_lora_parameters
    from psychosafe.train.config import ATTENTION_AND_MLP

    config = load_train_config(CONFIGS_DIR / "train-qwen3.5-27b.yaml")
    t = config.training
    assert (config.model.base, t["learning_rate"], t["lr_scheduler_type"], t["num_train_epochs"], t["max_length"],
            t["bf16"]) == ("Qwen/Qwen3.5-27B", 1e-4, "cosine", 5, 4096, True)
    assert config.lora.target_modules == ATTENTION_AND_MLP
    Qwen3_5Config(text_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
                                   num_key_value_heads=2, head_dim=16, vocab_size=1000, linear_num_key_heads=2,
                                   linear_num_value_heads=2, linear_key_head_dim=16, linear_value_head_dim=16),
                  vision_config=dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2,
                                     out_hidden_size=64)).save_pretrained(tmp_path)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(tmp_path))
    targets = [m for name, m in model.named_modules() if name.rsplit(".", 1)[-1] in ATTENTION_AND_MLP]
    assert len(targets) == 4 * 3 + 1 * 4  # MLP in every layer; q/k/v/o in the one full-attention layer of four
    trainable, _ = count_lora_parameters(str(tmp_path), config.model, config.lora)
    assert trainable == sum(config.lora.r * (m.in_features + m.out_features) for m in targets)


def test_cli_prints_the_plan_and_user_errors_without_traceback(tmp_path, write):
    import subprocess
    import sys

    run = make_run(tmp_path)
    cli = [sys.executable, "-m", "psychosafe.cli", "train", "--run-dir", str(run.path)]
    done = subprocess.run(cli + ["--dry-run", "--max-steps", "3"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "dry run: nothing trained" in done.stdout and "max_steps 3 overrides num_train_epochs" in done.stdout
    assert not run.train.exists()
    bad = write("bad.yaml", "lora: {rank: 8}\n")
    done = subprocess.run(cli + ["--config", str(bad)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "lora.rank: Extra inputs are not permitted" in done.stderr
    assert "Traceback" not in done.stderr


# -- conversations: SFT on every assistant turn, DPO on the last one ------------------------------------------

def _conversation_record() -> Record:
    users = [t["content"] for t in TURNS if t["role"] == "user"]
    return Record(id=record_id(users[-1], "suicide_self_harm", users[:-1]), messages=TURNS, label="harmful",
                  domain="suicide_self_harm", strategy="safety_planning", pattern="gradual_disclosure", risk_turn=3,
                  baseline_response="I'm sorry, but I can't help with that.", checks=Checks(passed=True))


def _embedded_tokenizer():
    from psychosafe.train.config import ModelSettings
    from psychosafe.train.model import load_tokenizer, resolve_base_model

    return load_tokenizer(resolve_base_model(ModelSettings()), ModelSettings())


def test_sft_rows_are_whole_conversations_and_dpo_pairs_answer_the_last_turn(tmp_path):
    records = [_conversation_record(), *_records()[:1]]
    run = make_run(tmp_path, splits={"train": records, "validation": []})
    config = tiny_config()
    sft = training_data(run.curated, config.data)
    assert sft.train[0]["messages"] == [{"role": "system", "content": "You are a helpful assistant."}, *TURNS]
    assert [m["role"] for m in sft.train[1]["messages"]] == ["system", "user", "assistant"]
    dpo = training_data(run.curated, config.data, config.dpo)
    assert dpo.train[0]["prompt"] == [{"role": "system", "content": "You are a helpful assistant."},
                                      *TURNS[:5]]
    assert dpo.train[0]["chosen"] == [TURNS[5]]
    assert dpo.train[0]["rejected"] == [{"role": "assistant", "content": "I'm sorry, but I can't help with that."}]


def test_the_loss_mask_covers_the_assistant_turns_and_nothing_else():
    from psychosafe.train.tokens import conversation_tokens

    tokenizer = _embedded_tokenizer()
    messages = [{"role": "system", "content": "You are a helpful assistant."}, *TURNS]
    tokens = conversation_tokens(messages, tokenizer)
    ids, mask = tokens["input_ids"], tokens["completion_mask"]
    assert len(ids) == len(mask) and set(mask) == {0, 1}
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    # the masked tokens, run by run, are exactly each assistant turn's text and its end-of-turn marker
    runs, current = [], []
    for token, bit in zip(ids, mask):
        if bit:
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    runs += [current] if current else []
    assistant = [m["content"] for m in TURNS if m["role"] == "assistant"]
    assert [tokenizer.decode(run) for run in runs] == [f"{text}<|im_end|>\n" for text in assistant]
    assert all(run[-2] == end for run in runs)
    # no system or user text is trained on: every unmasked token decodes to the rest of the rendered conversation
    unmasked = tokenizer.decode([t for t, bit in zip(ids, mask) if not bit])
    for m in messages:
        assert (m["content"] in unmasked) == (m["role"] != "assistant")
    last = conversation_tokens(messages, tokenizer, loss_on="last_turn")
    assert last["input_ids"] == ids
    trained = [t for t, bit in zip(ids, last["completion_mask"]) if bit]
    assert tokenizer.decode(trained) == f"{assistant[-1]}<|im_end|>\n"


def test_a_single_prompt_is_masked_as_trl_masks_a_prompt_completion_pair():
    from trl.trainer.sft_trainer import _tokenize

    from psychosafe.train.tokens import conversation_tokens

    tokenizer = _embedded_tokenizer()
    prompt = [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Hello!"}]
    completion = [{"role": "assistant", "content": "Hi! How can I help you today?"}]
    ours = conversation_tokens(prompt + completion, tokenizer)
    prompt_ids = _tokenize(tokenizer, prompt, add_generation_prompt=True)["input_ids"]
    full_ids = _tokenize(tokenizer, prompt + completion)["input_ids"]
    assert ours["input_ids"] == list(full_ids)
    assert ours["completion_mask"] == [0] * len(prompt_ids) + [1] * (len(full_ids) - len(prompt_ids))


def test_plan_counts_a_conversation_up_to_its_first_trained_token(tmp_path):
    run = make_run(tmp_path, splits={"train": [_conversation_record()], "validation": []})
    config = tiny_config(max_length=512)
    config.data.system_prompt = "none"
    from psychosafe.train.tokens import conversation_tokens

    plan = train_run(config, run.path, dry_run=True).plan
    tokens = conversation_tokens(training_data(run.curated, config.data).train[0]["messages"], _embedded_tokenizer())
    assert plan.tokens["max"] == len(tokens["input_ids"]) and plan.tokens["no_answer"] == 0
    short = tiny_config(max_length=24)  # shorter than the first user turn with its template: no answer token left
    short.data.system_prompt = "none"
    with pytest.raises(InputError, match="training.max_length: 24 tokens do not reach the answer"):
        train_run(short, run.path, dry_run=True)
