"""The main job: seeds + synthesized prompts -> responses and baselines -> self-critique and revision -> judge
(distilabel) -> curation -> report, into one run folder. Every model phase persists its batches, so a rerun
with the same run folder resumes. Every stage's rejections and counts are written by curation's one recording
helper (`record_stage`); the seeds' dedup and balance run through curation's step loop."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from psychosafe.core.backends import check_llm, embedder_id, model_id
from psychosafe.core.config import RebuildConfig
from psychosafe.core.executors import on_configured_executor
from psychosafe.core.io import write_jsonl_atomic
from psychosafe.core.runs import DEFAULT_RUNS_DIR, RunFolder
from psychosafe.curation import StepContext, curate, record_stage, run_steps
from psychosafe.curation.balance import domain_quotas, share_of_quotas
from psychosafe.curation.registry import Balance, ExactDedup
from psychosafe.pipelines import critique_and_revise, generate_responses, import_seeds, judge_records
from psychosafe.pipelines.conversations import plan_conversations, synthesize_conversations
from psychosafe.pipelines.synthesis import plan_requests, synthesize_prompts
from psychosafe.schemas import Record, default_taxonomy, records_to_dataset


def plan_strategies(records: list[Record]) -> list[Record]:
    """Each harmful prompt gets a strategy that fits its domain and intent (spread by id, not one per domain)."""
    taxonomy = default_taxonomy()
    return [r.model_copy(update={"strategy": taxonomy.choose_strategy(r.domain, r.intent, r.id)})
            if r.label == "harmful" else r for r in records]


def single_quotas(config: RebuildConfig, conversations: list[dict] = ()) -> dict[tuple[str, str], int]:
    """(domain, label) -> how many single prompts the run needs: each domain/label quota of the target, less the
    conversations planned in it."""
    quota = domain_quotas(config.target, config.domains, config.benign_fraction, config.curation.balance.proportions)
    planned = Counter((q["domain"], q["label"]) for q in conversations)
    return {group: max(0, q - planned[group]) for group, q in quota.items()}


def select_seeds(config: RebuildConfig, run: RunFolder, records: list[Record], *,
                 conversations: list[dict] = ()) -> list[Record]:
    """The seeds a run takes (stages "dedup_exact" and "balance"): one per normalised prompt, then their share of
    every domain/label quota of single prompts (`single_quotas`: the planned `conversations` take their place
    first). Synthesis writes the rest of each quota, and whatever the seeds lack; so seeds, synthesized prompts and
    conversations add up to the target, and no record is written only to be balanced away."""
    fraction = 0.0 if config.synthesis.seeds_only else config.synthesis.synthetic_fraction
    singles = single_quotas(config, conversations)
    single = sum(singles.values())
    quotas = share_of_quotas(single - round(single * fraction), singles)  # the seeds' share of every quota
    steps = [ExactDedup(name="dedup_exact"),
             Balance(target=sum(quotas.values()), domains=config.domains, benign_fraction=config.benign_fraction,
                     seed=config.seed, proportions=config.curation.balance.proportions, name="balance", quotas=quotas)]
    return run_steps(steps, records, StepContext(config, run))


@on_configured_executor  # every pipeline below runs locally or on Ray, as config.executor says
def synthesize(config: RebuildConfig, run: RunFolder, *, progress: bool = True) -> list[Record]:
    """Seeds and synthesized prompts -> responses and baselines -> self-critique and revision -> judge; saves
    `synthesized/dataset`. Every model phase resumes from its persisted batches."""
    t = time.perf_counter()
    imported = import_seeds(config.seeds)  # bad input fails here, before any model loads
    for llm in [config.generator, *judges_of(config)]:
        check_llm(llm)  # a missing model fails here too, before any work
    run.start(config=config.model_dump(mode="json"), seed=config.seed,
              models={"generator": model_id(config.generator), "embedder": embedder_id(config.embedder),
                      "judges": [model_id(j) for j in judges_of(config)]})
    record_stage(run, "seeds", time.perf_counter() - t,
                 {"in": len(imported.records) + len(imported.problems), "kept": len(imported.records),
                  "rejected": len(imported.problems)}, imported.problems)
    planned = plan_conversations_for(config)
    seeds = select_seeds(config, run, imported.records, conversations=planned)
    synthesized = synthesize_prompts_for(config, run, seeds, planned, progress=progress)
    records = plan_strategies(seeds + synthesized)

    generated = generate_responses(records, config.generator, run.synthesized / "responses", progress=progress,
                                   baseline=True, retries=config.retries)
    record_stage(run, "generate", generated.seconds, {
        "in": len(records), "kept": len(generated.records), "rejected": len(generated.rejected),
        "generated_now": generated.generated_now, "resumed_from_batches": generated.resumed,
        "output_tokens": generated.output_tokens, "baseline_fallbacks": generated.baseline_fallbacks},
        generated.rejected)
    records = generated.records + synthesize_conversations_for(config, run, planned, taken={r.id for r in records},
                                                               progress=progress)

    critiqued = critique_and_revise(records, config.generator, config.critique, run.synthesized / "critique",
                                    retries=config.retries, progress=progress)
    write_jsonl_atomic(run.synthesized / "critique" / "unparsed.jsonl", critiqued.unparsed)
    record_stage(run, "critique", critiqued.seconds, critiqued.counts, critiqued.rejected)
    records = critiqued.records

    t = time.perf_counter()
    judged = judge_records(records, judges_of(config), run.synthesized / "judge", retries=config.retries,
                           progress=progress)
    unjudged = [r for r in judged.rejected if r.code == "unparseable_output"]
    kept_unjudged = [r.record for r in unjudged] if config.on_unjudged == "keep" else []
    kept_ids = {r.id for r in kept_unjudged}
    rejected = [r for r in judged.rejected if r.id not in kept_ids]
    if kept_unjudged:
        write_jsonl_atomic(run.synthesized / "judge" / "unparsed.jsonl", unjudged)
    record_stage(run, "judge", time.perf_counter() - t,
                 judged.counts | {"kept_unscored": len(kept_unjudged), "rejected": len(rejected),
                                  "kept": len(judged.records) + len(kept_unjudged)}, rejected)
    kept = {r.id for r in judged.records} | kept_ids
    scored = {r.id: r for r in judged.records}
    records = [scored.get(r.id, r) for r in records if r.id in kept]  # the order of the records, not the judge's

    records_to_dataset(records).save_to_disk(str(run.synthesized / "dataset"), num_shards=1)
    return records


def synthesize_prompts_for(config: RebuildConfig, run: RunFolder, seeds: list[Record], conversations: list[dict] = (),
                           *, progress: bool = True) -> list[Record]:
    """Synthesize the prompts each domain/label quota still needs after the seeds and the planned conversations
    (stage "synthesis")."""
    if config.synthesis.seeds_only:  # repair: an imported corpus's own prompts, none written by the model
        return []
    have = Counter((r.domain, r.label) for r in seeds)
    need = {group: max(0, q - have[group]) for group, q in single_quotas(config, conversations).items()}
    plan = plan_requests(need, config.synthesis, locales=config.locales, seed=config.seed)
    writer = config.generator.model_copy(update={"max_new_tokens": config.synthesis.max_new_tokens,
                                                 "temperature": config.synthesis.temperature})
    result = synthesize_prompts(plan, writer, run.synthesized / "prompts", retries=config.retries,
                                license=config.synthesis.license, taken={r.id for r in seeds}, progress=progress)
    record_stage(run, "synthesis", result.seconds, result.counts, result.rejected)
    return result.records


def plan_conversations_for(config: RebuildConfig) -> list[dict]:
    """The conversations a run writes: `conversations.share` of the target, over the domain/label quotas."""
    total = round(config.target * config.conversations.share)
    if not total:
        return []
    need = domain_quotas(total, config.domains, config.benign_fraction, config.curation.balance.proportions)
    return plan_conversations(need, config.conversations, personas=config.synthesis.personas, locales=config.locales,
                              seed=config.seed)


def synthesize_conversations_for(config: RebuildConfig, run: RunFolder, planned: list[dict], *, taken: set[str],
                                 progress: bool = True) -> list[Record]:
    """Write the planned conversations turn by turn (stage "conversations"); the user turns with the synthesis
    settings, the answers with the generator's."""
    if not planned:
        return []
    writer = config.generator.model_copy(update={"max_new_tokens": config.synthesis.max_new_tokens,
                                                 "temperature": config.synthesis.temperature})
    result = synthesize_conversations(planned, config.generator, writer, run.synthesized / "conversations",
                                      retries=config.retries, license=config.synthesis.license, taken=taken,
                                      user_candidates=config.conversations.user_candidates, progress=progress)
    record_stage(run, "conversations", result.seconds, result.counts, result.rejected)
    return result.records


def judges_of(config: RebuildConfig) -> list:
    """The judge panel; without one, the generator judges (RebuildConfig.judge_panel)."""
    return config.judge_panel()


def rebuild(config: RebuildConfig, run_dir: str | Path | None = None, *, progress: bool = True) -> RunFolder:
    """Synthesize and curate end to end. Reusing a run folder resumes it: finished batches are not redone."""
    run = RunFolder(run_dir) if run_dir else RunFolder.new(DEFAULT_RUNS_DIR, config.name)
    records = synthesize(config, run, progress=progress)
    curate(records, config, run, progress=progress)  # writes curated/, rejected/, report/ and the counts
    return run
