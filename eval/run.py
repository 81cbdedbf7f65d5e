"""The eval commands as library functions: each reads or writes one eval folder, `RUN/eval/<name>/`:

```
manifest.json      config, versions, models, seconds and counts per step
generation/        persisted generation batches (a rerun resumes), fingerprint.json (model, adapter, variant and
                   settings: a rerun with others is refused), and a merged adapter model if any
generated/         the prompts with responses (datasets save_to_disk; generated.parquet beside it)
judge/             persisted judge attempts, per judge
judged/            the judged records: scores, rule-based checks, string-match class
rejected/          <step>.jsonl: every row set aside, with the reason and the raw output
summary.json       every figure of the report, for scripts
report.md + PNGs
```
"""

from __future__ import annotations

import time
from pathlib import Path

from psychosafe.core.backends import check_llm, model_id
from psychosafe.core.runs import DEFAULT_RUNS_DIR, RunFolder
from psychosafe.pipelines.judge import judge_records

from .config import EvalConfig
from .conversations import turn_views, with_turn_scores
from .generate import generate_eval
from .metrics import check_response
from .records import COMPLIANCE_BENCHMARKS, GENERATED, JUDGED, EvalRecord, EvalScores, load_eval, save_eval
from .report import write_eval_report
from .tasks import first_per_group


def eval_folder(run_dir: str | Path | None, name: str) -> RunFolder:
    """RUN/eval/<name>; without a run folder, runs/<name>-<time>/eval/<name>."""
    run = RunFolder(run_dir) if run_dir else RunFolder.new(DEFAULT_RUNS_DIR, name)
    return RunFolder(run.eval / name)


def generate_run(records: list[EvalRecord], config: EvalConfig, folder: RunFolder, *, adapter: Path | None = None,
                 progress: bool = True) -> RunFolder:
    """Responses for the prompts into `folder/generated`; then the summary and report."""
    check_llm(config.generator)
    folder.start(config=config.model_dump(mode="json"), seed=config.generator.seed or 0,
                 models={"generator": model_id(config.generator) + (f"+adapter:{adapter}" if adapter else "")})
    result = generate_eval(records, config.generator, folder.path / "generation", variant=config.variant,
                           adapter=adapter, progress=progress)
    folder.write_rejected("eval-generate", result.rejected)
    save_eval(result.records, folder.path / GENERATED)
    folder.record_stage("generate", seconds=result.seconds, counts={
        "in": len(records), "kept": len(result.records) - len(result.rejected), "rejected": len(result.rejected),
        "output_tokens": result.output_tokens, "generated_now": result.generated_now,
        "resumed_from_batches": result.resumed, "prompt_set": records[0].benchmark if records else None})
    write_eval_report(folder.path)
    return folder


def judge_run(folder: RunFolder, config: EvalConfig, *, limit: int | None = None, progress: bool = True) -> RunFolder:
    """The rubric judge and the rule-based checks over `folder/generated`, into `folder/judged`.

    Harmful prompts of a corpus set are scored on the four criteria; benign ones, and every XSTest and
    SORRY-Bench prompt, on the compliance classes (the benchmarks ask whether the model complied). A conversation
    is judged whole (its last answer, on the conversation criteria too), and each earlier answer with the turns before
    it in view (`turn_scores`, eval/conversations.py). `limit` judges only the first N responses per group (a quick
    look with a slow judge)."""
    records = first_per_group(load_eval(folder.path / GENERATED), limit)
    start = time.perf_counter()
    checked = [check_response(r) for r in records]
    as_judged = [r.model_copy(update={"label": "benign"}) if r.benchmark in COMPLIANCE_BENCHMARKS else r
                 for r in checked]
    # a conversation: every answer before the last too, each with the turns before it in view (one judge run)
    views = [v for r in checked for v in turn_views(r)]
    result = judge_records(as_judged + views, config.judges, folder.path / "judge", retries=config.judge_retries,
                           progress=progress)
    labels = {r.id: r.label for r in checked}
    scored = {r.id: r.scores for r in result.records}
    # set-aside rows stay in the dataset with empty scores, so the report can count them; they are in rejected/
    judged = [with_turn_scores(r.model_copy(update={"scores": EvalScores.of(scored[r.id])}) if r.id in scored else r,
                               scored) for r in checked]
    view_ids = {v.id for v in views}
    for rej in result.rejected:
        if rej.id not in view_ids:
            rej.record = rej.record.model_copy(update={"label": labels[rej.record.id]})
    folder.write_rejected("judge", [r for r in result.rejected if r.id not in view_ids])
    folder.write_rejected("judge-turns", [r for r in result.rejected if r.id in view_ids])
    save_eval(judged, folder.path / JUDGED)
    manifest = folder.manifest()
    models = manifest.get("models", {}) | {"judges": [model_id(j) for j in config.judges]}
    folder.update(models=models, judge_config={"judges": [j.model_dump(mode="json") for j in config.judges],
                                               "retries": config.judge_retries})
    folder.record_stage("judge", seconds=time.perf_counter() - start, counts=result.counts)
    write_eval_report(folder.path)
    return folder


def classify_run(folder: RunFolder) -> RunFolder:
    """Without a judge: the rule-based checks and the string-match class over `folder/generated`, into
    `folder/judged` (scores left empty), then the summary and report."""
    rows = [check_response(r) for r in load_eval(folder.path / GENERATED)]
    save_eval(rows, folder.path / JUDGED)
    write_eval_report(folder.path)
    return folder


def benchmark_run(records: list[EvalRecord], config: EvalConfig, folder: RunFolder, *, judge: bool = True,
                  adapter: Path | None = None, progress: bool = True) -> RunFolder:
    """XSTest or SORRY-Bench end to end: generate, classify by string matching, and (unless `judge` is False)
    by the judge; the summary holds the benchmark's own figures."""
    generate_run(records, config, folder, adapter=adapter, progress=progress)
    return judge_run(folder, config, progress=progress) if judge else classify_run(folder)
