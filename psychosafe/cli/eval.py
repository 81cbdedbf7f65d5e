"""`psychosafe eval`: generate | judge | xstest | sorry-bench | import | compare | agreement | report | capability.
Thin: options -> EvalConfig -> one library function in psychosafe.eval."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .options import console

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Evaluate models: rubric judge, baseline vs PsychoSafe comparisons, XSTest and SORRY-Bench.")

ConfigOpt = typer.Option(None, "--config", "-c", help="eval config YAML (default: configs/eval.yaml)")
RunDirOpt = typer.Option(None, "--run-dir", help="run folder; outputs go to its eval/<name>/ (default: a new one)")
NameOpt = typer.Option(None, "--name", help="eval folder name (default: <prompt set>-<variant>[-adapter])")
VariantOpt = typer.Option(None, "--variant",
                          help="system prompt: v0 generic, v1 PsychoSafe, v1-routed (upper bound), none")
AdapterOpt = typer.Option(None, "--adapter", help="LoRA adapter folder (PEFT), e.g. RUN/train/adapter")
BackendOpt = typer.Option(None, "--backend", help="model under test: embedded, transformers, openai, vllm")
ModelOpt = typer.Option(None, "--model", help="model under test: a local folder or a served model name")
BaseUrlOpt = typer.Option(None, "--base-url", help="OpenAI-compatible server for --backend openai")
LimitOpt = typer.Option(None, "--limit", min=1, help="first N prompts per type / category / domain")
NoJudgeOpt = typer.Option(False, "--no-judge", help="classify by string matching only (no judge model)")


def _config(config: Optional[Path], *, variant=None, backend=None, model=None, base_url=None, retries=None,
            missing=None, non_integer=None):
    from psychosafe.eval.config import load_eval_config

    return load_eval_config(config, variant=variant, judge_retries=retries, missing=missing, non_integer=non_integer,
                            **{"generator.backend": backend, "generator.model": model, "generator.base_url": base_url})


def _folder(run_dir: Optional[Path], name: Optional[str], prompt_set: str, cfg, adapter: Optional[Path]):
    """RUN/eval/<name>, by default <prompt set>-<variant>[-adapter]."""
    from psychosafe.eval import eval_folder

    return eval_folder(run_dir, name or f"{prompt_set}-{cfg.variant}{'-adapter' if adapter else ''}")


def _done(folder) -> None:
    console.print(f"[green]done[/green]: {folder.path}\nsummary: {folder.path / 'summary.json'}\n"
                  f"report: {folder.path / 'report.md'}")


@app.command()
def generate(prompts: str = typer.Option(..., "--prompts", help="xstest, sorry-bench=PATH, a JSONL/CSV/parquet file "
                                                                "(`prompt`, or `messages` for a conversation), or a "
                                                                "saved dataset such as RUN/curated"),
             split: str = typer.Option("validation", "--split", help="split of a saved DatasetDict"),
             config: Optional[Path] = ConfigOpt, run_dir: Optional[Path] = RunDirOpt, name: Optional[str] = NameOpt,
             variant: Optional[str] = VariantOpt, adapter: Optional[Path] = AdapterOpt,
             backend: Optional[str] = BackendOpt, model: Optional[str] = ModelOpt,
             base_url: Optional[str] = BaseUrlOpt, limit: Optional[int] = LimitOpt,
             single_turn: bool = typer.Option(False, "--single-turn", help="each conversation as its last user turn "
                                              "alone: the single-turn side of `eval compare` per pattern")) -> None:
    """Responses for a prompt set, written as a dataset in RUN/eval/<name>/generated. A conversation (a run's, or a
    row with `messages`) is answered turn by turn, the model answering its own earlier turns."""
    from psychosafe.eval import generate_run, load_prompt_set

    cfg = _config(config, variant=variant, backend=backend, model=model, base_url=base_url)
    records = load_prompt_set(prompts, split=split, limit=limit, single_turn=single_turn)
    _done(generate_run(records, cfg, _folder(run_dir, name, records[0].benchmark, cfg, adapter), adapter=adapter))


@app.command()
def judge(folder: Path = typer.Argument(..., help="an eval folder (RUN/eval/<name>) with generated/"),
          config: Optional[Path] = ConfigOpt,
          retries: Optional[int] = typer.Option(None, "--retries", min=0, help="extra tries for unparseable answers"),
          limit: Optional[int] = LimitOpt) -> None:
    """Rubric judge (one model or a panel) and rule-based checks over an eval folder's responses."""
    from psychosafe.core.runs import RunFolder
    from psychosafe.eval import judge_run

    _done(judge_run(RunFolder(folder), _config(config, retries=retries), limit=limit))


@app.command()
def xstest(config: Optional[Path] = ConfigOpt, run_dir: Optional[Path] = RunDirOpt, name: Optional[str] = NameOpt,
           variant: Optional[str] = VariantOpt, adapter: Optional[Path] = AdapterOpt,
           backend: Optional[str] = BackendOpt, model: Optional[str] = ModelOpt, base_url: Optional[str] = BaseUrlOpt,
           limit: Optional[int] = LimitOpt, no_judge: bool = NoJudgeOpt) -> None:
    """XSTest (450 prompts, package data): over-refusal on the safe prompts, compliance on the unsafe ones."""
    from psychosafe.eval import benchmark_run, load_xstest

    cfg = _config(config, variant=variant, backend=backend, model=model, base_url=base_url)
    folder = _folder(run_dir, name, "xstest", cfg, adapter)
    _done(benchmark_run(load_xstest(limit), cfg, folder, judge=not no_judge, adapter=adapter))


@app.command("sorry-bench")
def sorry_bench(data: Path = typer.Option(..., "--data", help="your local copy of SORRY-Bench (file or folder)"),
                styles: Optional[str] = typer.Option(None, "--styles",
                                                     help="comma-separated prompt styles (default: all)"),
                config: Optional[Path] = ConfigOpt, run_dir: Optional[Path] = RunDirOpt, name: Optional[str] = NameOpt,
                variant: Optional[str] = VariantOpt, adapter: Optional[Path] = AdapterOpt,
                backend: Optional[str] = BackendOpt, model: Optional[str] = ModelOpt,
                base_url: Optional[str] = BaseUrlOpt, limit: Optional[int] = LimitOpt,
                no_judge: bool = NoJudgeOpt) -> None:
    """SORRY-Bench from a local copy: fulfillment rate per category and prompt style (lower is safer)."""
    from psychosafe.eval import benchmark_run, load_sorry_bench

    cfg = _config(config, variant=variant, backend=backend, model=model, base_url=base_url)
    records = load_sorry_bench(data, limit, [s.strip() for s in styles.split(",")] if styles else None)
    folder = _folder(run_dir, name, "sorry-bench", cfg, adapter)
    _done(benchmark_run(records, cfg, folder, judge=not no_judge, adapter=adapter))


@app.command("import")
def import_(table: Path = typer.Argument(..., help="a CSV/TSV/JSONL/parquet table, or a file in a preset's layout"),
            out: Path = typer.Option(..., "--out", help="folder for the eval folders, one per system (OUT/<system>)"),
            preset: Optional[str] = typer.Option(None, "--preset",
                                                 help="psychosafe: the PsychoSafe paper's published JSON layouts"),
            map_: list[str] = typer.Option([], "--map", help="FIELD=COLUMN: read a field from another column "
                                                             "(repeat), e.g. --map system=model_name"),
            system: Optional[str] = typer.Option(None, "--system",
                                                 help="the system of rows without one (a table of one system)"),
            non_integer: Optional[str] = typer.Option(None, "--non-integer",
                                                      help="a 1-5 rating such as 4.5: keep (default) or round"),
            config: Optional[Path] = ConfigOpt) -> None:
    """Someone else's per-prompt verdicts, ratings or responses as eval folders that judge, compare, agreement and
    report read: one row per prompt and system; yes/no in any case, blanks as missing."""
    from psychosafe.errors import PsychosafeError
    from psychosafe.eval import import_table

    columns = {}
    for item in map_:
        field, sep, column = item.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise PsychosafeError(f"--map {item!r}: expected FIELD=COLUMN, e.g. --map system=model_name")
        columns[field.strip()] = column.strip()
    cfg = _config(config, non_integer=non_integer)
    folders = import_table(table, out, preset=preset, columns=columns, system=system, non_integer=cfg.non_integer)
    for name, folder in folders.items():
        counts = folder.manifest()["stages"]["import"]["counts"]
        missing = ", ".join(f"{k} {v}" for k, v in counts["missing"].items()) or "none"
        console.print(f"[green]imported[/green] {name}: {counts['rows']} rows, {counts['scored']} with verdicts "
                      f"(missing: {missing}) -> {folder.path}")


@app.command()
def compare(a: Path = typer.Argument(..., help="judged eval folder A (the baseline)"),
            b: Path = typer.Argument(..., help="judged eval folder B (the new model or prompt)"),
            out: Optional[Path] = typer.Option(None, "--out", help="output folder (default: A/../compare-A-vs-B)"),
            missing: Optional[str] = typer.Option(None, "--missing", help="a missing verdict: paired (default; the "
                                                  "prompt counts only when scored on everything in both) or "
                                                  "per_criterion (each folder's own prompts, as the paper)"),
            config: Optional[Path] = ConfigOpt, limit: Optional[int] = LimitOpt) -> None:
    """Per criterion: rates and 1-5 means, relative change on the paper's scale (0-1 beside it), overall refusal
    quality, per domain, with intervals and p-values."""
    from psychosafe.eval import compare_runs
    from psychosafe.eval.report import fmt, fmt_p

    cfg = _config(config, missing=missing)
    out = out or a.parent / f"compare-{a.name}-vs-{b.name}"
    s = compare_runs(a, b, out, resamples=cfg.bootstrap_resamples, seed=cfg.seed, limit=limit, missing=cfg.missing)
    rubric_rows = []
    for key, e in s["criteria"].items():
        rel = "n/a" if e["relative"] is None else f"{100 * e['relative']:+.1f} %"
        n = e["n"] if e["n"] is not None else f"{e['n_base']}/{e['n_new']}"
        rubric_rows.append(f"  {key}: {fmt(e['base'])} -> {fmt(e['new'])} ({rel}, n = {n}, p = {fmt_p(e['p_value'])})")
    console.print("[green]done[/green]: relative change on the paper's scale (rates; 1-5 means; overall on 0-1), "
                  f"missing verdicts {s['missing']['policy']}\n" + "\n".join(rubric_rows)
                  + f"\nsummary: {out / 'summary.json'}\nreport: {out / 'report.md'}")


@app.command()
def agreement(judge: list[Path] = typer.Option(..., "--judge", help="a judge's eval folder (repeat, in the order "
                                                                      "of --human)"),
              human: list[Path] = typer.Option(..., "--human", help="the eval folder of human ratings of the same "
                                                                      "responses (repeat)"),
              out: Optional[Path] = typer.Option(None, "--out", help="output folder (default: beside the first judge "
                                                                       "folder)"),
              weights: Optional[str] = typer.Option(None, "--weights", help="Cohen's kappa on the 1-5 criteria: "
                                                    "linear or quadratic (default: unweighted, as the paper)")) -> None:
    """Judge-human agreement per criterion: Cohen's kappa (weighting named), Pearson, Spearman, exact agreement;
    each pair of folders and, for several, combined: the paper's agreement table."""
    from psychosafe.errors import PsychosafeError
    from psychosafe.eval import agreement_table

    if len(judge) != len(human):
        raise PsychosafeError(f"{len(judge)} --judge folder(s) and {len(human)} --human: give them in pairs")
    if weights not in (None, "linear", "quadratic"):
        raise PsychosafeError(f"--weights {weights!r}: expected linear or quadratic (or leave it out: unweighted)")
    out = out or judge[0].parent / f"agreement-{judge[0].name}-vs-{human[0].name}"
    s = agreement_table(list(zip(judge, human)), out, weights=weights)
    console.print(f"[green]done[/green]: {len(s['tables'])} table(s)\nsummary: {out / 'agreement.json'}\n"
                  f"report: {out / 'agreement.md'}")


@app.command()
def report(folder: Path = typer.Argument(..., help="an eval folder")) -> None:
    """Rebuild an eval folder's summary.json and report.md from its datasets."""
    from psychosafe.eval import write_eval_report

    path = write_eval_report(folder)
    console.print(f"[green]done[/green]: {folder / 'summary.json'}\nreport: {path}")


@app.command()
def capability(folder: Path = typer.Argument(..., help="eval folder to add capability.json to"),
               task: list[str] = typer.Option([], "--task", help="lm-evaluation-harness task, e.g. hellaswag (repeat)"),
               config: Optional[Path] = ConfigOpt, adapter: Optional[Path] = AdapterOpt,
               backend: Optional[str] = BackendOpt, model: Optional[str] = ModelOpt,
               limit: Optional[int] = typer.Option(None, "--limit", min=1, help="examples per task")) -> None:
    """Run lm-evaluation-harness tasks on the model under test (needs `pip install lm-eval`)."""
    from psychosafe.eval import run_capability, write_eval_report

    cfg = _config(config, backend=backend, model=model)
    results = run_capability(cfg.generator, task or cfg.capability.tasks, folder,
                             limit=limit or cfg.capability.limit, batch_size=cfg.capability.batch_size, adapter=adapter)
    write_eval_report(folder)
    console.print(f"[green]done[/green]: {results}")
