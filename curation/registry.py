"""The built-in curation steps, by the names `curation.steps` uses, and the list of steps a config asks for.

Each built-in step is a thin object over the function of its module (dedup.py, collapse.py, checks.py, ...): it
reads its settings from the run config and hands the loop (steps.run_steps) a StepResult. A step of your own is
named in the config by import path and built there with its params (core/config.py, CurationStep).
"""

from __future__ import annotations

from psychosafe.core.backends import model_id
from psychosafe.core.config import RebuildConfig, SemanticDedupConfig, TemplateCollapseConfig
from psychosafe.pipelines.same_request import judge_same_request
from psychosafe.schemas import Record

from .balance import balance_domains
from .checks import apply_checks
from .collapse import detect_template_collapse
from .contamination import Contamination
from .dedup import dedup_by_language, dedup_exact
from .label_audit import LabelAuditStep
from .scores import filter_scores, read_judge_trust
from .similarity import choose_method, nearest_similarity
from .steps import Step, StepContext, StepResult, pool_turns, turn_texts


def _search(dedup: SemanticDedupConfig) -> dict:
    """The similarity-search settings every search of curation shares."""
    return {"method": dedup.method, "ann_above": dedup.ann_above, "nprobe": dedup.nprobe}


class ExactDedup(Step):
    """One record per normalised prompt: the best-scored one."""

    def __init__(self, name: str = "prompt_dedup_exact"):
        self.name = name

    def run(self, records: list[Record], context: StepContext) -> StepResult:
        return dedup_exact(records, name=self.name)


class Embed(Step):
    """Embeds every prompt and response into the run folder's cache (the steps after it read them from there), and
    measures each one's nearest neighbour for the report. Sets nothing aside."""

    def __init__(self, name: str = "embed"):
        self.name = name

    def run(self, records: list[Record], context: StepContext) -> StepResult:
        notes, vectors = {}, {}
        for kind in ("prompt", "response"):  # every user turn, every assistant turn (a conversation has several)
            texts, owners = turn_texts(records, kind)
            turns, stats = context.embedder.embed(texts, progress=context.progress, label=f"{kind}s")
            vectors[kind] = pool_turns(turns, owners, len(records))
            notes[kind] = {"texts": stats.texts, "computed": stats.computed, "cached": stats.cached}
        dedup = context.config.curation.dedup
        method = choose_method(len(records), dedup.method, dedup.ann_above)
        answered = [k for k, r in enumerate(records) if r.response.strip()]
        context.analysis.prompt_nearest = nearest_similarity(vectors["prompt"], method=method, nprobe=dedup.nprobe)
        context.analysis.response_nearest = nearest_similarity(vectors["response"][answered], method=method,
                                                               nprobe=dedup.nprobe)
        return StepResult(self.name, records, notes=notes, filters=False)


class SemanticDedup(Step):
    """Near-duplicate prompts collapse to the best-scored one; pairs in the review band go to the run's judges or
    are flagged (dedup.py). Prompts of a language in `languages` are embedded with that language's embedder and
    compared among themselves. `settings`: those of curation.dedup, validated as there."""

    def __init__(self, name: str = "prompt_dedup_semantic", **settings):
        self.settings = SemanticDedupConfig(**settings)
        self.name = name

    def run(self, records: list[Record], context: StepContext) -> StepResult:
        s = self.settings
        judges = context.config.judges if s.judge else []
        same_request = None
        if judges:
            def same_request(pairs):
                return judge_same_request(pairs, judges, context.run.path / "curation" / self.name,
                                          retries=context.config.retries, progress=context.progress)
        return dedup_by_language(
            records, s, lambda embedder, rows: context.vectors("prompt", rows, embedder=embedder),
            same_request=same_request, judge_name=", ".join(model_id(j) for j in judges) or "judge", name=self.name,
            progress=context.progress)


class TemplateCollapse(Step):
    """One response text answering many prompts: flagged, or all but the best dropped; a conversation takes part
    with every assistant turn. `settings`: those of curation.template_collapse; `search`: curation.dedup's search
    settings (method, ann_above, nprobe)."""

    def __init__(self, name: str = "template_collapse", search: dict | None = None, **settings):
        self.settings = TemplateCollapseConfig(**settings)
        self.search = search or {}
        self.name = name

    def run(self, records: list[Record], context: StepContext) -> StepResult:
        s = self.settings
        vectors, owners = context.turn_vectors("response", records)
        result = detect_template_collapse(records, vectors, owners=owners, threshold=s.threshold,
                                          min_group=s.min_group, action=s.action, name=self.name, **self.search)
        context.analysis.collapse = result.notes
        return result


class Checks(Step):
    """Refusal markers and contact details against the resource directory (four outcomes: contacts.py)."""

    def __init__(self, on_refusal_mismatch: str = "drop", other_locale: str = "flag", name: str = "checks"):
        self.on_refusal_mismatch = on_refusal_mismatch
        self.other_locale = other_locale
        self.name = name

    def run(self, records: list[Record], context: StepContext) -> StepResult:
        result = apply_checks(records, on_refusal_mismatch=self.on_refusal_mismatch, other_locale=self.other_locale,
                              name=self.name)
        context.analysis.checked = result.kept + [r.record for r in result.rejected]
        return result


class ScoreFilter(Step):
    """Judged records below the minimum scores are set aside; unjudged ones pass. After a review pull, only on the
    criteria the judge is trusted on (the run's review/judge_trust.json; curation/scores.py)."""

    def __init__(self, min_scores: dict[str, bool | int] | None = None, name: str = "scores"):
        self.min_scores = min_scores
        self.name = name

    def run(self, records: list[Record], context: StepContext) -> StepResult:
        return filter_scores(records, self.min_scores, name=self.name, trust=read_judge_trust(context.run))


class Balance(Step):
    """A target number of records, spread over domains, labels and categories."""

    def __init__(self, target: int, domains: list[str], benign_fraction: float, seed: int,
                 proportions: dict[str, float] | None = None, name: str = "balance_curated",
                 quotas: dict[tuple[str, str], int] | None = None):
        self.target, self.domains, self.benign_fraction, self.seed = target, domains, benign_fraction, seed
        self.proportions, self.quotas = proportions, quotas
        self.name = name

    def run(self, records: list[Record], context: StepContext) -> StepResult:
        return balance_domains(records, target=self.target, domains=self.domains, benign_fraction=self.benign_fraction,
                               seed=self.seed, proportions=self.proportions, name=self.name, quotas=self.quotas)


def _balance(config: RebuildConfig) -> Balance:
    b = config.curation.balance
    return Balance(target=b.target or config.target, domains=config.domains, seed=config.seed,
                   benign_fraction=config.benign_fraction if b.benign_fraction is None else b.benign_fraction,
                   proportions=b.proportions)


# name in `curation.steps` -> the step as the run config sets it up
BUILTIN_STEPS = {
    "prompt_dedup_exact": lambda config: ExactDedup(),
    "embed": lambda config: Embed(),
    "prompt_dedup_semantic": lambda config: SemanticDedup(**config.curation.dedup.model_dump()),
    "contamination": lambda config: Contamination(
        config.curation.contamination.sets, config.curation.contamination.action,
        config.curation.contamination.threshold or config.curation.dedup.threshold),
    "template_collapse": lambda config: TemplateCollapse(search=_search(config.curation.dedup),
                                                         **config.curation.template_collapse.model_dump()),
    "checks": lambda config: Checks(config.curation.on_refusal_mismatch, config.curation.contacts.other_locale),
    "label_audit": lambda config: LabelAuditStep(config.curation.label_audit.action),
    "scores": lambda config: ScoreFilter(config.curation.min_scores),
    "balance_curated": _balance,
}


def build_steps(config: RebuildConfig) -> list[Step]:
    """The enabled steps of `curation.steps`, in order, each named by its stage. Cheap: no model loads here (the
    config already checked that every step exists and takes its params)."""
    steps = []
    for entry in config.curation.steps:
        if entry.enabled:
            step = BUILTIN_STEPS[entry.step](config) if entry.step in BUILTIN_STEPS else entry.build()
            step.name = entry.stage
            steps.append(step)
    return steps
