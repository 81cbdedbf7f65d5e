"""Pydantic models of the YAML run configs. A bad value fails at once, naming file, field and expectation.

Over 400 lines on purpose: one module holds every run config (rebuild, curation, review, publish, train, eval) and
the one loader they share (`load_config`, dotted overrides), so a config has one home and one way to be read; the
models are short declarations, and splitting them by stage would scatter the cross-field checks they share."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer, model_validator

from psychosafe import configs
from psychosafe.errors import input_error_from_validation
from psychosafe.schemas._yaml import load_model, read_yaml
from psychosafe.schemas.resources import LOCALE_PATTERN, default_resources
from psychosafe.schemas.rubric import default_rubric
from psychosafe.schemas.taxonomy import default_taxonomy

CONFIGS_DIR = Path(configs.__file__).resolve().parent  # package data: found in a checkout and in the wheel alike
BUILTIN_SEEDS = "builtin"
# The record fields a seed row may carry (the rest are filled by later stages).
SEED_FIELDS = ("prompt", "domain", "category", "intent", "label", "locale", "original_id")
# A corpus imported whole (`curate`, `audit`) may carry its responses and each row's provenance too.
IMPORT_FIELDS = (*SEED_FIELDS, "response", "dataset", "author", "source_category")
# Named column layouts of known corpora (the published PsychoSafe corpus, XSTest, SORRY-Bench, WildGuardMix, ...).
PRESETS_FILE = CONFIGS_DIR / "import_presets.yaml"
ANY_VALUE = "*"  # in a value map: every value not listed

M = TypeVar("M", bound=BaseModel)


def load_config(path: str | Path, model: type[M], overrides: dict[str, Any] | None = None) -> M:
    """The one loader of every YAML config: the file validated into `model`, then `overrides` (the command line's
    options) applied and validated like the file's own values. An override names a field by its dotted path
    ("generator.model", "training.max_steps"); None means: keep the file's value. Errors name the file, the field
    and what was expected."""
    return with_overrides(load_model(path, model), overrides, source=path)


def config_from_dict(data: dict, model: type[M], overrides: dict[str, Any] | None = None, *, source: str | Path) -> M:
    """The same for a config that is not a file (the one a run's manifest recorded): `source` names it in errors."""
    try:
        config = model.model_validate(data)
    except ValidationError as exc:
        raise input_error_from_validation(source, exc, data) from None
    return with_overrides(config, overrides, source=source)


def with_overrides(config: M, overrides: dict[str, Any] | None, *, source: str | Path) -> M:
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if not overrides:
        return config
    data = config.model_dump()
    for key, value in overrides.items():
        node = data
        *outer, last = key.split(".")
        for part in outer:
            node = node.setdefault(part, {})
        node[last] = value
    try:
        return type(config).model_validate(data)
    except ValidationError as exc:
        raise input_error_from_validation(f"{source} (with command-line options)", exc, data) from None


def only_known(values, known: list[str], what: str, source: str = "") -> None:
    """Raise the config error every id list shares: which ids are unknown and which are allowed."""
    unknown = [v for v in values if v not in known]
    if unknown:
        where = f" ({source})" if source else ""
        raise ValueError(f"unknown {what}(s) {unknown}; expected some of {list(known)}{where}")


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LLMConfig(_Config):
    """One model behind one backend. `model` is a local folder (transformers, vllm), a served model name
    (openai) or empty for the embedded model."""

    backend: Literal["embedded", "transformers", "openai", "vllm"] = "embedded"
    model: str | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    device: str = "cpu"
    dtype: str = "float32"
    max_new_tokens: int = Field(200, gt=0)
    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    batch_size: int = Field(8, gt=0)
    seed: int | None = None
    # Hold rubric JSON and baseline refusals to their shape while decoding: xgrammar on the embedded and
    # transformers backends, the server's structured outputs on openai (a vLLM server). The vllm backend
    # (in-process) ignores it for now: its answers are parsed and retried like any unconstrained model's.
    structured_output: bool = True

    @model_validator(mode="after")
    def _model_named_when_needed(self) -> "LLMConfig":
        if self.backend != "embedded" and not self.model:
            raise ValueError(f"backend '{self.backend}' needs `model` (a local folder or a served model name)")
        if self.backend == "openai" and not self.base_url:
            raise ValueError("backend 'openai' needs `base_url`, e.g. http://127.0.0.1:8000/v1")
        return self


class EmbedderConfig(_Config):
    backend: Literal["embedded", "sentence-transformers"] = "embedded"
    model: str | None = None
    device: str = "cpu"
    batch_size: int = Field(64, gt=0)
    processes: int = Field(1, ge=1, description="encode in this many processes (sentence-transformers' multi-process "
                                                "pool, on `device`; the CPU cores are shared out among them): for "
                                                "large corpora on machines with cores to spare (README, Performance)")

    @model_validator(mode="after")
    def _model_named_when_needed(self) -> "EmbedderConfig":
        if self.backend != "embedded" and not self.model:
            raise ValueError("backend 'sentence-transformers' needs `model` (a local folder or a hub id)")
        return self


def import_presets() -> dict[str, dict]:
    """preset name -> its settings (a SeedSource's fields but `path`), from configs/import_presets.yaml."""
    data = read_yaml(PRESETS_FILE)
    return {name: {k: v for k, v in preset.items() if k != "description"} for name, preset in (data or {}).items()}


class SeedSource(_Config):
    """A file to import, seeds or a whole corpus: JSONL, JSON array, CSV, parquet, a saved dataset folder, or a Hub
    dataset id. `columns`, `values` and `defaults` say how its rows become records; a `preset` gives all three for a
    known layout, and what is set beside it overrides the preset's."""

    path: str = BUILTIN_SEEDS
    format: Literal["auto", "jsonl", "json", "csv", "parquet", "disk", "hub"] = "auto"
    split: str = "train"
    preset: str | None = Field(None, description="a layout of configs/import_presets.yaml (psychosafe-paper, xstest, "
                                                 "sorry-bench, wildguardmix, strongreject, harmbench)")
    columns: dict[str, str] = Field(default_factory=dict, description="record field -> column in the file")
    values: dict[str, dict[str, str | None]] = Field(default_factory=dict, description=(
        "record field -> {value in the file -> value of the record}; null: out of scope (the row is set aside, "
        "counted); '*': every value not listed. A value in no map fails the import, naming the column"))
    defaults: dict[str, str] = Field(default_factory=dict, description="record field -> value for rows without one")
    license: str | None = Field(None, description="the corpus's license; none stated: recorded as 'unknown'")
    name: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not data.get("preset"):
            return data
        presets = import_presets()
        if data["preset"] not in presets:
            raise ValueError(f"unknown preset {data['preset']!r}; expected one of {sorted(presets)}")
        merged = dict(presets[data["preset"]])
        for key, value in data.items():
            if key == "values" and isinstance(value, dict):  # one value map per field, merged entry by entry
                merged[key] = {f: {**merged.get(key, {}).get(f, {}), **(m or {})} for f, m in
                               {**merged.get(key, {}), **value}.items()}
            elif key in ("columns", "defaults") and isinstance(value, dict):
                merged[key] = {**merged.get(key, {}), **value}
            elif value is not None or key not in merged:
                merged[key] = value
        return merged

    @field_validator("columns", "defaults", "values")
    @classmethod
    def _known_fields(cls, value: dict) -> dict:
        only_known(value, list(IMPORT_FIELDS), "record field")
        return value

    def column(self, field: str) -> str | None:
        """The file's column for a record field: the mapped one, else the column of the field's own name unless that
        column is mapped to another field (SORRY-Bench's `category` is the source's category, not the taxonomy's)."""
        if field in self.columns:
            return self.columns[field]
        return None if field in self.columns.values() else field


class SplitConfig(_Config):
    validation_per_domain: int = Field(100, ge=0)
    test_per_domain: int = Field(100, ge=0)


NON_ENGLISH = ("de", "fr", "es")  # the languages benchmarks/data/dedup_pairs.jsonl measures besides English


class DedupLanguage(_Config):
    """Prompts whose locale is in one language, embedded with an embedder of their own and compared among
    themselves (a prompt and its translation are both kept: each language is its own training data)."""

    embedder: EmbedderConfig | None = Field(None, description="empty: the run's `embedder`")
    threshold: float = Field(gt=0, le=1, description="this embedder's cosine at or above which prompts merge")
    review_from: float | None = Field(None, gt=0, le=1, description="this embedder's review band: [review_from, "
                                                                     "threshold); empty: no band")


class SemanticDedupConfig(_Config):
    """Near-duplicate prompts (same label and domain; same intent where both carry one) collapse to the best-scored
    one. The threshold and the review band are all-MiniLM-L6-v2's, chosen on benchmarks/data/dedup_pairs.jsonl
    (bench_dedup_quality.py, README): 0.845 is the lowest cosine at which no labelled pair of different requests
    merges; in [review_from, threshold) rewordings and different requests mix, so a pair there never merges by
    cosine: the run's judges decide it (`judge`), else it is flagged for a person. Another embedder has another
    scale: measure its values with the benchmark. The search settings (`method`, `ann_above`, `nprobe`) serve
    every similarity search of curation: template collapse, the leakage check and the report's plot too."""

    threshold: float = Field(0.845, gt=0, le=1, description="cosine at or above which two prompts are duplicates")
    review_from: float | None = Field(
        0.59, gt=0, le=1, description="pairs in [review_from, threshold) go to the judges or to review; empty: no band")
    band_neighbours: int = Field(
        2, ge=1, description="per prompt, its this many most similar band partners are asked about, and its this "
                             "many closest pairs above the threshold that a rule keeps apart are flagged (bounds the "
                             "judge's work and the review queue)")
    judge: bool = Field(True, description="ask the run's `judges` whether a band pair is the same request; false, "
                                          "or no judges configured: flag the pair for review")
    method: Literal["auto", "exact", "ivf"] = Field(
        "auto", description="exact all-pairs, ivf (inverted lists over faiss k-means), or auto: ivf above `ann_above`")
    ann_above: int = Field(20000, gt=0, description="auto: search inverted lists above this many prompts")
    nprobe: int | Literal["auto"] = Field(
        "auto", description="inverted lists searched per prompt; auto: chosen from the number of prompts so recall "
                            "of near-duplicates stays >= 0.99 up to 1M (bench_dedup.py)")
    languages: dict[str, DedupLanguage] = Field(
        default_factory=lambda: {language: DedupLanguage(threshold=0.95, review_from=0.5) for language in NON_ENGLISH},
        description="locale language (de, fr, ...) -> its embedder and thresholds; prompts of other languages use "
                    "`embedder` and the values above. Default: German, French and Spanish held to 0.95 with the band "
                    "from 0.5 (all-MiniLM-L6-v2 is English: it merged a different request in each at 0.845)")

    @field_validator("nprobe")
    @classmethod
    def _positive_nprobe(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError(f"expected a positive number of lists or 'auto', got {value}")
        return value

    @field_validator("languages")
    @classmethod
    def _language_codes(cls, value: dict[str, DedupLanguage]) -> dict[str, DedupLanguage]:
        bad = [k for k in value if not re.fullmatch(r"[a-z]{2,3}", k)]
        if bad:
            raise ValueError(f"language(s) {bad}: expected the language part of a locale, such as 'de' for de-DE")
        return value

    @model_validator(mode="after")
    def _band_below_threshold(self) -> "SemanticDedupConfig":
        for where, t, lo in [("", self.threshold, self.review_from)] + [
                (f"languages.{k}.", v.threshold, v.review_from) for k, v in self.languages.items()]:
            if lo is not None and lo >= t:
                raise ValueError(f"{where}review_from ({lo}) must be below {where}threshold ({t}): the band is "
                                 "[review_from, threshold)")
        return self

    @model_validator(mode="before")
    @classmethod
    def _no_old_settings(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if data.get("method") == "faiss":
                raise ValueError("method 'faiss' is now called 'ivf' (inverted lists over faiss k-means); "
                                 "expected 'auto', 'exact' or 'ivf'")
            if data.get("enabled") is False:
                raise ValueError("`enabled` is gone: leave prompt_dedup_semantic out of curation.steps "
                                 "(or give it `enabled: false` there)")
            # `enabled: true` is what every older run recorded in its manifest: it changes nothing
            data = {k: v for k, v in data.items() if k != "enabled"}
        return data


class TemplateCollapseConfig(_Config):
    """Near-identical responses to different prompts: the failure of a corpus that reuses one text per domain."""

    threshold: float = Field(0.95, gt=0, le=1, description="cosine of two responses that counts as the same text")
    min_group: int = Field(3, ge=2, description="this many prompts sharing one response make a template")
    action: Literal["flag", "drop"] = Field(
        "flag", description="flag: keep every record, marked in checks.template_of; drop: keep the best of each group")


class BalanceConfig(_Config):
    target: int | None = Field(None, gt=0, description="records to keep; empty: the run's `target` (8019 by default)")
    proportions: dict[str, float] = Field(default_factory=dict,
                                          description="domain -> share of the target; empty: equal shares")
    benign_fraction: float | None = Field(None, ge=0, le=1, description="empty: the run's `benign_fraction`")

    @field_validator("proportions")
    @classmethod
    def _proportions(cls, value: dict[str, float]) -> dict[str, float]:
        only_known(value, default_taxonomy().domain_ids(), "domain")
        if value and (any(v < 0 for v in value.values()) or sum(value.values()) <= 0):
            raise ValueError(f"expected non-negative shares with a positive sum, got {value}")
        return value


class ContactsConfig(_Config):
    """What the contact check does with each outcome (curation/contacts.py): unknown and malformed contacts always
    block a record; a real service of another locale is flagged, or blocked where the corpus is for one country."""

    other_locale: Literal["flag", "block"] = Field(
        "flag", description="a listed service of another locale: flag it (kept), or block the record")


SHIPPED_EVAL_SETS = ("xstest", "harmbench")  # package data of psychosafe.eval (eval/data)


class EvalSet(_Config):
    """An evaluation set whose prompts must not be trained on. `xstest` and `harmbench` ship with psychosafe; any
    other set is a local file (`path`) read with a `preset` of configs/import_presets.yaml (default: the preset of
    the set's name, if there is one, else a `prompt` column)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    path: str | None = None
    preset: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        # "xstest", or "strongreject=/data/strongreject.csv"
        if isinstance(data, str):
            name, _, path = data.partition("=")
            return {"name": name, "path": path or None}
        return data

    @model_validator(mode="after")
    def _findable(self) -> "EvalSet":
        if self.path is None and self.name not in SHIPPED_EVAL_SETS:
            raise ValueError(f"eval set '{self.name}' needs a `path` (only {list(SHIPPED_EVAL_SETS)} ship with "
                             "psychosafe)")
        if self.path is not None and not Path(self.path).exists():
            raise ValueError(f"eval set '{self.name}': no file or folder at {self.path}")
        if self.preset is not None and self.preset not in import_presets():
            raise ValueError(f"eval set '{self.name}': unknown preset {self.preset!r}; expected one of "
                             f"{sorted(import_presets())}")
        return self


class ContaminationConfig(_Config):
    """Prompts found in an evaluation set, exactly (normalised) or semantically (cosine at or above the threshold),
    are kept out of train: dropped, or held out in a split of their own (`held_out`), or only flagged."""

    sets: list[EvalSet] = Field(default_factory=lambda: [EvalSet(name=n) for n in SHIPPED_EVAL_SETS])
    action: Literal["drop", "holdout", "flag"] = Field(
        "drop", description="drop: set aside; holdout: kept in curated/held_out, never in train, validation or "
                            "test; flag: kept where they fall (checks.contamination), for an audit")
    threshold: float | None = Field(None, gt=0, le=1, description="semantic overlap; empty: curation.dedup.threshold")


class LabelAuditConfig(_Config):
    """The judge reads each prompt (rubric.yaml `prompt_audit`): is it harmful, and in which domain? A prompt
    whose reading contradicts its label or domain is flagged with the judge's reason (or set aside)."""

    action: Literal["flag", "drop"] = "flag"


# The built-in curation steps (psychosafe/curation/registry.py), in their default order, with where each one's
# settings are: a built-in step takes no `params`, the config block named here says how it runs.
CURATION_STEPS = {
    "prompt_dedup_exact": "none (the same normalised prompt is one prompt)",
    "embed": "`embedder`, and curation.dedup for the search behind the report's similarity plot",
    "prompt_dedup_semantic": "curation.dedup",
    "contamination": "curation.contamination (and curation.dedup's threshold and search settings)",
    "template_collapse": "curation.template_collapse (and curation.dedup's search settings)",
    "checks": "curation.on_refusal_mismatch, curation.contacts",
    "label_audit": "curation.label_audit, and the run's judges (else the generator)",
    "scores": "curation.min_scores",
    "balance_curated": "curation.balance, and the run's target, domains, benign_fraction and seed",
}
# Built-in steps a config has to ask for: the label audit runs a model over every prompt (`audit --judge` adds it).
OPT_IN_STEPS = ("label_audit",)
DEFAULT_STEPS = tuple(name for name in CURATION_STEPS if name not in OPT_IN_STEPS)
# Stage names a curation step may not take: each stage writes rejected/<name>.jsonl and its manifest entry, and these
# belong to rebuild's pipeline stages and to curation's final split.
RESERVED_STAGES = ("seeds", "dedup_exact", "balance", "synthesis", "conversations", "generate", "critique", "judge",
                   "split", "import")
IMPORT_PATH = r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*"


class CurationStep(_Config):
    """One entry of `curation.steps`: a built-in step by name (a bare string is enough), or a step of your own by
    import path, "package.module:ClassName", built as `ClassName(**params)` (see psychosafe.curation.Step)."""

    step: str
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$", description=(
        "stage name in the manifest and in rejected/<name>.jsonl; default: the built-in step's name, else the "
        "class's `name` attribute, else the class name"))
    params: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of your step's class")
    enabled: bool = True

    @model_validator(mode="before")
    @classmethod
    def _bare_name(cls, data: Any) -> Any:
        return {"step": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _step_exists(self) -> "CurationStep":
        if self.step in CURATION_STEPS:
            if self.params:
                raise ValueError(f"built-in step '{self.step}' takes no params; its settings are: "
                                 f"{CURATION_STEPS[self.step]}")
        elif not re.fullmatch(IMPORT_PATH, self.step):
            raise ValueError(f"unknown step '{self.step}'; expected one of {list(CURATION_STEPS)} or an import "
                             "path 'package.module:ClassName'")
        else:
            self.build()  # your class is found and takes these params, before any model loads
        if self.stage in RESERVED_STAGES:
            raise ValueError(f"stage name '{self.stage}' belongs to another stage of the run; give the step a "
                             f"`name:` other than {list(RESERVED_STAGES)}")
        return self

    def step_class(self) -> type:
        """The class an import-path step names; ValueError saying what is missing."""
        module_name, class_name = self.step.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ValueError(f"cannot import module '{module_name}' of step '{self.step}': {exc}") from None
        found = getattr(module, class_name, None)
        if not isinstance(found, type):
            raise ValueError(f"module '{module_name}' has no class '{class_name}' (step '{self.step}')")
        return found

    def build(self) -> Any:
        """An instance of an import-path step, built with `params`; ValueError naming what it refused."""
        cls = self.step_class()
        try:
            step = cls(**self.params)
        except (TypeError, ValueError) as exc:  # a pydantic ValidationError is a ValueError
            raise ValueError(f"step '{self.step}' refused params {self.params}: {exc}") from None
        if not callable(getattr(step, "run", None)):
            raise ValueError(f"step '{self.step}' has no run(records, context) method")
        return step

    @property
    def stage(self) -> str:
        if self.name or self.step in CURATION_STEPS:
            return self.name or self.step
        cls = self.step_class()
        own = getattr(cls, "name", None)
        return own if isinstance(own, str) and own else cls.__name__

    @model_serializer(mode="wrap")
    def _compact(self, handler) -> Any:
        # a built-in step with nothing else set is written as its bare name (the manifest stays readable)
        data = handler(self)
        return self.step if data == {"step": self.step, "name": None, "params": {}, "enabled": True} else data


class CurationConfig(_Config):
    steps: list[CurationStep] = Field(
        default_factory=lambda: [CurationStep(step=name) for name in DEFAULT_STEPS],
        description="the steps in the order they run; each runs on what the one before kept. Reorder, disable "
                    "(`enabled: false`, or leave it out) or add your own by import path. Default: every built-in "
                    "step but label_audit")
    splits: SplitConfig = Field(default_factory=SplitConfig)
    on_refusal_mismatch: Literal["drop", "flag"] = Field(
        "drop", description="a harmful prompt not refused, or a benign one refused: drop it, or flag checks.passed")
    contacts: ContactsConfig = Field(default_factory=ContactsConfig)
    dedup: SemanticDedupConfig = Field(default_factory=SemanticDedupConfig)
    contamination: ContaminationConfig = Field(default_factory=ContaminationConfig)
    label_audit: LabelAuditConfig = Field(default_factory=LabelAuditConfig)
    template_collapse: TemplateCollapseConfig = Field(default_factory=TemplateCollapseConfig)
    min_scores: dict[str, bool | int] | None = Field(
        None, description="judge criterion -> lowest passing score (judged records); empty: rubric.yaml's thresholds")
    balance: BalanceConfig = Field(default_factory=BalanceConfig)
    leakage_threshold: float | None = Field(
        None, gt=0, le=1, description="prompts this similar may not sit in different splits; empty: dedup.threshold")

    @field_validator("min_scores")
    @classmethod
    def _known_criteria(cls, value: dict[str, bool | int] | None) -> dict[str, bool | int] | None:
        if value is not None:
            rubric = default_rubric()
            only_known(value, [c.id for c in rubric.criteria + rubric.conversation], "criterion", "rubric.yaml")
        return value

    @field_validator("steps")
    @classmethod
    def _one_stage_per_name(cls, value: list[CurationStep]) -> list[CurationStep]:
        stages = [s.stage for s in value if s.enabled]
        twice = sorted({s for s in stages if stages.count(s) > 1})
        if twice:
            raise ValueError(f"stage name(s) {twice} used twice; give one of them a `name:` (each stage writes "
                             "rejected/<name>.jsonl)")
        return value


class SynthesisConfig(_Config):
    """Prompt synthesis from the taxonomy (pipelines/synthesis.py): which cells, how many prompts per cell,
    and how synthesized prompts mix with the seeds."""

    synthetic_fraction: float = Field(
        0.5, ge=0, le=1, description="share of each domain/label quota written by the model; seeds fill the rest, "
                                     "and synthesis also makes up whatever the seeds lack")
    seeds_only: bool = Field(False, description="write no prompt at all: the seeds are the prompts, and a quota they "
                                                "cannot fill stays short (repairing an imported corpus)")
    prompts_per_cell: int = Field(2, gt=0, description="N distinct prompts per cell (domain x category x intent x "
                                                       "persona); raised when the target needs more than the cells "
                                                       "hold")
    oversample: float = Field(1.3, ge=1, description="extra requests to cover prompts set aside (invalid, duplicate)")
    multi_domain_fraction: float = Field(0.15, ge=0, le=1, description="share of harmful cells that also touch a "
                                                                       "lower-risk domain")
    personas: list[str] = Field(default_factory=list, description="personas to use (taxonomy ids); empty: all")
    max_new_tokens: int = Field(80, gt=0)
    temperature: float = Field(0.9, ge=0)
    license: str = Field("Apache-2.0", description="license of the synthesized prompts (the generator's terms apply)")

    @field_validator("personas")
    @classmethod
    def _known_personas(cls, value: list[str]) -> list[str]:
        only_known(value, [p.id for p in default_taxonomy().personas], "persona", "taxonomy.yaml")
        return value


class CritiqueConfig(_Config):
    """Self-critique against rubric.yaml and revision, repeated until its thresholds are met."""

    max_rounds: int = Field(2, ge=0, description="critique + revise rounds at most; 0 skips self-critique")
    max_new_tokens: int = Field(160, gt=0, description="for the critique's JSON answer")
    on_unparsed: Literal["keep", "reject"] = Field(
        "keep", description="a critique that never parses: keep the unrevised response (counted), or set the record "
                            "aside")


class ConversationConfig(_Config):
    """Conversations (pipelines/conversations.py): a share of the target written turn by turn from the taxonomy's
    patterns, beside the single prompts. Turns count the user's turns; each has the assistant's answer."""

    share: float = Field(0.0, ge=0, le=1, description="share of the target written as conversations (the single "
                                                      "prompts, seeds and synthesized, make up the rest)")
    min_turns: int = Field(3, ge=1, description="user turns at least (a pattern's own min_turns may ask for more)")
    max_turns: int = Field(4, ge=1, description="user turns at most")
    patterns: list[str] = Field(default_factory=list, description="patterns to write (taxonomy.yaml ids); empty: all")
    user_candidates: int = Field(2, ge=1, description="user turns the simulator samples at once for each conversation "
                                 "and turn; the first usable one is taken, and the turn is asked again only when none "
                                 "is (a retry is a whole phase; a candidate more is a little longer batch)")

    @field_validator("patterns")
    @classmethod
    def _known_patterns(cls, value: list[str]) -> list[str]:
        only_known(value, default_taxonomy().pattern_ids(), "pattern", "taxonomy.yaml")
        return value

    @model_validator(mode="after")
    def _turns_fit(self) -> "ConversationConfig":
        if self.min_turns > self.max_turns:
            raise ValueError(f"min_turns {self.min_turns} is more than max_turns {self.max_turns}")
        taxonomy = default_taxonomy()
        too_long = {p: taxonomy.pattern(p).min_turns for p in self.pattern_ids()
                    if taxonomy.pattern(p).min_turns > self.max_turns}
        if too_long:
            raise ValueError(f"pattern(s) {too_long} need more user turns than max_turns {self.max_turns}; raise "
                             "max_turns or leave them out of `patterns`")
        return self

    def pattern_ids(self) -> list[str]:
        return self.patterns or default_taxonomy().pattern_ids()

    def turn_range(self, pattern_id: str) -> tuple[int, int]:
        """The fewest and most user turns a conversation of this pattern gets."""
        return max(self.min_turns, default_taxonomy().pattern(pattern_id).min_turns), self.max_turns


class LLMResources(_Config):
    """distilabel StepResources for every step that runs an LLM (generate, critique, judge), on either
    executor: e.g. one vLLM replica per GPU with `replicas: 8, gpus: 1`."""

    replicas: int = Field(1, gt=0)
    cpus: int | None = Field(None, gt=0, description="CPUs each replica holds (on Ray: its torch threads)")
    gpus: int | None = Field(None, gt=0)


class RebuildConfig(_Config):
    name: str = Field("rebuild", pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = 42
    target: int = Field(8019, gt=0, description="number of prompts to take into the run")
    domains: list[str] = Field(default_factory=lambda: default_taxonomy().domain_ids())
    locales: list[str] = Field(default_factory=lambda: ["en-US", "en-GB"])
    benign_fraction: float = Field(0.2, ge=0, le=1, description="share of benign contrast prompts")
    seeds: list[SeedSource] = Field(default_factory=lambda: [SeedSource()], min_length=1)
    generator: LLMConfig = Field(default_factory=LLMConfig)
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)
    curation: CurationConfig = Field(default_factory=CurationConfig)
    synthesis: SynthesisConfig = Field(default_factory=SynthesisConfig)
    critique: CritiqueConfig = Field(default_factory=CritiqueConfig)
    conversations: ConversationConfig = Field(default_factory=ConversationConfig)
    judges: list[LLMConfig] = Field(default_factory=list, description="the judge panel (majority vote when several); "
                                                                       "empty: the generator judges")
    retries: int = Field(2, ge=0, description="extra tries for a structured answer that does not parse")
    on_unjudged: Literal["keep", "reject"] = Field(
        "reject", description="a record no judge scored parseably: set it aside, or keep it unscored (counted)")
    executor: Literal["local", "ray"] = Field("local", description="run the pipelines in local processes or on Ray")
    ray_address: str | None = Field(None, description="Ray cluster to join (e.g. auto, ray://head:10001); "
                                                      "empty: start a local Ray")
    llm_resources: LLMResources = Field(default_factory=LLMResources)

    def judge_panel(self) -> list[LLMConfig]:
        """The judge panel; without one, the generator judges (greedy, with room for the JSON answer only)."""
        return self.judges or [self.generator.model_copy(update={"temperature": 0.0, "max_new_tokens": 96})]

    @field_validator("domains")
    @classmethod
    def _known_domains(cls, value: list[str]) -> list[str]:
        known = default_taxonomy().domain_ids()
        if not value:
            raise ValueError(f"expected a non-empty list from {known}")
        only_known(value, known, "domain")
        return value

    @field_validator("locales")
    @classmethod
    def _locales_in_directory(cls, value: list[str]) -> list[str]:
        known = default_resources().locales()
        bad = [x for x in value if not re.fullmatch(LOCALE_PATTERN, x) or x not in known]
        if bad or not value:
            raise ValueError(f"locale(s) {bad} have no entries in resources.yaml; expected some of {known}")
        return value


def load_rebuild_config(path: str | Path | None = None, **overrides) -> RebuildConfig:
    """A rebuild config (default: configs/embedded.yaml); `overrides` such as target=10 are validated too."""
    return load_config(path or CONFIGS_DIR / "embedded.yaml", RebuildConfig, overrides)
