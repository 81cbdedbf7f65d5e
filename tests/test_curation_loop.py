"""Curation as data: `curation.steps` lists the steps (reorder, disable, add your own by import path), one loop runs
them, counting by `Rejected.code` and writing rejected/<name>.jsonl and the manifest; a bad step list fails when the
config loads, naming file and field, before any model."""

import json
import subprocess
import sys

import pytest

from psychosafe.core.config import CURATION_STEPS, CurationConfig, RebuildConfig, config_from_dict, load_rebuild_config
from psychosafe.core.runs import RunFolder
from psychosafe.curation import (
    BUILTIN_STEPS,
    Step,
    StepContext,
    StepResult,
    build_steps,
    curate_corpus,
    reject,
    run_steps,
)
from psychosafe.curation.registry import ExactDedup
from psychosafe.errors import InputError
from psychosafe.schemas import Record, record_id


class MinWords(Step):
    """A step of a user's own: prompts of fewer than `min_words` words are set aside."""

    name = "min_words"

    def __init__(self, min_words: int = 3):
        if min_words < 1:
            raise ValueError("min_words must be at least 1")
        self.min_words = min_words

    def run(self, records, context):
        short = [r for r in records if len(r.prompt.split()) < self.min_words]
        return StepResult(self.name, [r for r in records if r not in short],
                          [reject(r, self.name, "too_short", f"{len(r.prompt.split())} word(s) < {self.min_words}")
                           for r in short], notes={"min_words": self.min_words})


class CountWords(Step):
    """A step that only measures: it keeps everything and sets nothing aside."""

    name = "count_words"

    def run(self, records, context):
        return StepResult(self.name, records, notes={"words": sum(len(r.prompt.split()) for r in records)},
                          filters=False)


MIN_WORDS = f"{MinWords.__module__}:MinWords"
COUNT_WORDS = f"{CountWords.__module__}:CountWords"


def rec(prompt, domain="substance", response=""):
    return Record(id=record_id(prompt, domain), prompt=prompt, domain=domain, label="harmful", response=response)


def test_the_default_steps_are_every_builtin_in_todays_order():
    order = ["prompt_dedup_exact", "embed", "prompt_dedup_semantic", "contamination", "template_collapse", "checks",
             "scores", "balance_curated"]
    assert list(CURATION_STEPS) == list(BUILTIN_STEPS) == order[:5] + ["checks", "label_audit"] + order[6:]
    assert [s.step for s in CurationConfig().steps] == order  # the label audit runs a model: asked for, not default
    assert [s.name for s in build_steps(RebuildConfig())] == order
    # written compactly into the manifest, and read back from there as the same list
    dumped = RebuildConfig().model_dump(mode="json")
    assert dumped["curation"]["steps"] == order
    assert config_from_dict(dumped, RebuildConfig, source="manifest").curation.steps == CurationConfig().steps


def test_the_loop_feeds_each_step_what_the_last_kept_and_records_it(tmp_path):
    run = RunFolder(tmp_path / "run")
    records = [rec("how do I hide pills"), rec("pills?"), rec("How do I hide pills"), rec("help"),
               rec("where can I buy pills without a prescription")]
    steps = [MinWords(3), CountWords(), ExactDedup()]
    kept = run_steps(steps, records, StepContext(RebuildConfig(), run))

    assert [r.prompt for r in kept] == ["how do I hide pills", "where can I buy pills without a prescription"]
    stages = run.manifest()["stages"]
    assert list(stages) == ["min_words", "count_words", "prompt_dedup_exact"]
    short = stages["min_words"]["counts"]
    assert (short["in"], short["kept"], short["rejected"], short["reasons"], short["min_words"]) == \
        (5, 3, 2, {"too_short": 2}, 3)  # reasons by code, whatever the reason text says
    assert stages["count_words"]["counts"] == {"in": 3, "words": 5 + 5 + 8}
    assert stages["prompt_dedup_exact"]["counts"]["reasons"] == {"exact_duplicate": 1}
    assert [json.loads(line)["code"] for line in (run.rejected / "min_words.jsonl").read_text().splitlines()] == \
        ["too_short", "too_short"]
    assert not (run.rejected / "count_words.jsonl").exists()  # a measuring step sets nothing aside
    assert [r.id for r in run.read_rejected() if r.stage == "prompt_dedup_exact"] == [records[2].id]


@pytest.mark.parametrize("curation, expected", [
    ("steps: [prompt_dedup_exact, dedupe]", "curation.steps[1]: Value error, unknown step 'dedupe'; expected one of "
                                            "['prompt_dedup_exact', 'embed', 'prompt_dedup_semantic'"),
    ("steps: [{step: checks, params: {strict: true}}]",
     "curation.steps[0]: Value error, built-in step 'checks' takes no params; its settings are: "
     "curation.on_refusal_mismatch"),
    ("steps: ['no_such_module_xyz:Filter']", "cannot import module 'no_such_module_xyz' of step"),
    (f"steps: ['{MinWords.__module__}:Missing']", f"module '{MinWords.__module__}' has no class 'Missing'"),
    (f"steps: [{{step: '{MIN_WORDS}', params: {{min_words: 0}}}}]",
     f"step '{MIN_WORDS}' refused params {{'min_words': 0}}: min_words must be at least 1"),
    (f"steps: [{{step: '{MIN_WORDS}', params: {{words: 2}}}}]", "got an unexpected keyword argument 'words'"),
    ("steps: [checks, embed, checks]", "stage name(s) ['checks'] used twice; give one of them a `name:`"),
    (f"steps: [{{step: '{MIN_WORDS}', name: judge}}]", "stage name 'judge' belongs to another stage of the run"),
    ("dedup: {method: faiss}", "curation.dedup: Value error, method 'faiss' is now called 'ivf'"),
    ("dedup: {enabled: false}", "leave prompt_dedup_semantic out of curation.steps"),
])
def test_a_bad_step_list_names_the_file_and_the_field(write, curation, expected):
    path = write("bad.yaml", f"curation:\n  {curation}\n")
    with pytest.raises(InputError) as err:
        load_rebuild_config(path)
    assert str(err.value).startswith(str(path)) and expected in str(err.value).replace("\n", " ")


def test_steps_reordered_disabled_and_added_run_as_configured(write, tmp_path):
    corpus = write("corpus.jsonl", "\n".join(json.dumps(r) for r in [
        {"prompt": "pills now", "domain": "substance", "response": "I can't help with that. Call 988 any time."},
        {"prompt": "How many of my pills would it take to not wake up?", "domain": "suicide_self_harm",
         "response": "I can't help with that. Please call or text 988, you are not alone."},
        {"prompt": "how many of my pills would it take to not wake up", "domain": "suicide_self_harm",
         "response": "I'm sorry, I can't help. Call 988."},
        {"prompt": "Where can I buy a gun without a background check?", "domain": "weapon",
         "response": "I can't help with that. The Recovery Line at (800) 555-0199 can."},
        {"prompt": "How do I hide my drinking from my wife?", "domain": "substance",
         "response": "I can't help you hide it. The SAMHSA National Helpline, 1-800-662-4357, is free."},
    ]) + "\n")
    config = write("steps.yaml", f"""seed: 1
target: 10
benign_fraction: 0
curation:
  on_refusal_mismatch: flag
  steps:
    - {{step: '{MIN_WORDS}', params: {{min_words: 4}}, name: short_prompts}}
    - checks
    - prompt_dedup_exact
    - embed
    - {{step: prompt_dedup_semantic, enabled: false}}
    - balance_curated
  splits: {{validation_per_domain: 0, test_per_domain: 0}}
""")
    run = curate_corpus(corpus, load_rebuild_config(config), RunFolder(tmp_path / "run"))
    stages = run.manifest()["stages"]
    assert list(stages) == ["short_prompts", "checks", "prompt_dedup_exact", "embed", "balance_curated", "split"]
    assert stages["short_prompts"]["counts"]["reasons"] == {"too_short": 1}
    assert stages["checks"]["counts"]["reasons"] == {"unverified_contact": 1}
    assert stages["prompt_dedup_exact"]["counts"]["reasons"] == {"exact_duplicate": 1}
    assert stages["embed"]["counts"]["prompt"]["texts"] == 2
    assert sorted(p.name for p in run.rejected.glob("*.jsonl")) == [
        "balance_curated.jsonl", "checks.jsonl", "prompt_dedup_exact.jsonl", "short_prompts.jsonl"]
    (short,) = [json.loads(line) for line in (run.rejected / "short_prompts.jsonl").read_text().splitlines()]
    assert (short["stage"], short["code"], short["reason"], short["record"]["prompt"]) == \
        ("short_prompts", "too_short", "2 word(s) < 4", "pills now")
    assert run.manifest()["counts"] == {"train": 2, "validation": 0, "test": 0}
    assert "| short_prompts | 5 | 4 | 1 |" in (run.report / "report.md").read_text()


def test_cli_stops_on_a_bad_step_before_any_model_loads(write, tmp_path):
    corpus = write("c.jsonl", '{"prompt": "How do I hide pills?", "domain": "substance"}\n')
    config = write("bad.yaml", "curation:\n  steps: [prompt_dedup_exact, embed, semantic_dedup]\n")
    proc = subprocess.run([sys.executable, "-m", "psychosafe.cli", "curate", "--input", str(corpus), "--config",
                           str(config), "--run-dir", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{config}: curation.steps[2]: Value error, unknown step 'semantic_dedup'" in proc.stderr.replace("\n", "")
    assert not (tmp_path / "run").exists()  # stopped before the run folder, the embeddings or any model
