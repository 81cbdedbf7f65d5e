"""The command line. Thin: each command parses options, builds a config and calls one library function."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import List, Optional

import datasets
import typer
from rich.markup import escape
from rich.table import Table

from psychosafe.app.doctor import doctor_report
from psychosafe.app.rebuild import rebuild as run_rebuild
from psychosafe.app.rebuild import synthesize as run_synthesize
from psychosafe.core.config import load_rebuild_config
from psychosafe.core.runs import DEFAULT_RUNS_DIR, RunFolder
from psychosafe.curation import curate_corpus
from psychosafe.curation.curate import curation_config
from psychosafe.errors import PsychosafeError

from .corpus import DefaultOpt, LicenseOpt, LocaleOpt, MapOpt, MappingOpt, PresetOpt, ValueOpt, audit, import_source
from .options import RunDirOpt, VerboseOpt, console, out

ABOUT = "Rebuild, curate, review, publish, train on and evaluate a corpus of psychologically-informed refusals."
app = typer.Typer(add_completion=False, no_args_is_help=True, help=ABOUT)

ConfigOpt = typer.Option(None, "--config", "-c", help="run config YAML (default: configs/embedded.yaml)")
TargetOpt = typer.Option(None, help="number of prompts")
RayOpt = typer.Option(False, "--ray",
                      help="run the pipelines as distilabel RayPipelines (a local Ray unless --ray-address)")
RayAddressOpt = typer.Option(None, "--ray-address",
                             help="Ray cluster to join, e.g. auto or ray://head:10001 (implies --ray)")


@app.callback(help=ABOUT)
def options(verbose: bool = VerboseOpt) -> None:
    # Acted on by psychosafe.cli.main before the stages are imported (the libraries warn at import time).
    pass


def _config(path: Optional[Path], **overrides):
    return load_rebuild_config(path, **overrides)


def _executor_overrides(ray: bool, ray_address: Optional[str]) -> dict:
    # Without either flag the config's own executor stands.
    return {"executor": "ray", "ray_address": ray_address} if ray or ray_address else {}


@app.command()
def rebuild(config: Optional[Path] = ConfigOpt, target: Optional[int] = TargetOpt, run_dir: Optional[Path] = RunDirOpt,
            ray: bool = RayOpt, ray_address: Optional[str] = RayAddressOpt) -> None:
    """Synthesize and curate, end to end."""
    cfg = _config(config, target=target, **_executor_overrides(ray, ray_address))
    run = run_rebuild(cfg, run_dir)
    counts = run.manifest().get("counts", {})
    console.print(f"[green]done[/green]: {sum(counts.values())} curated records "
                  f"({', '.join(f'{k} {v}' for k, v in counts.items())})")
    console.print(f"run folder: {run.path}\nreport: {run.report / 'report.md'}")


@app.command()
def synthesize(config: Optional[Path] = ConfigOpt, target: Optional[int] = TargetOpt,
               run_dir: Optional[Path] = RunDirOpt, ray: bool = RayOpt,
               ray_address: Optional[str] = RayAddressOpt) -> None:
    """Seeds and synthesized prompts -> responses, baselines, self-critique and revision, judge (rebuild's first
    half)."""
    cfg = _config(config, target=target, **_executor_overrides(ray, ray_address))
    run = RunFolder(run_dir) if run_dir else RunFolder.new(DEFAULT_RUNS_DIR, cfg.name)
    records = run_synthesize(cfg, run)
    console.print(f"[green]done[/green]: {len(records)} records in {run.synthesized / 'dataset'}")


@app.command()
def curate(run_dir: Path = typer.Option(..., "--run-dir", help="run folder to write curated/, rejected/, report/ into"),
           input: Optional[Path] = typer.Option(
               None, "--input", "-i", help="corpus: a run folder, a saved dataset folder, .parquet, .jsonl, .json or "
                                           ".csv (default: what --run-dir synthesized)"),
           config: Optional[Path] = typer.Option(
               None, "--config", "-c",
               help="run config YAML (default: the run's own config, else the library defaults)"),
           target: Optional[int] = typer.Option(None, help="records to keep after balancing"),
           preset: Optional[str] = PresetOpt, map: Optional[List[str]] = MapOpt,
           value: Optional[List[str]] = ValueOpt, default: Optional[List[str]] = DefaultOpt,
           license: Optional[str] = LicenseOpt, locale: Optional[str] = LocaleOpt,
           mapping: Optional[Path] = MappingOpt) -> None:
    """Curate any corpus: dedup (exact, semantic), contamination, template collapse, checks, scores, balance, splits,
    report. A corpus in its own layout imports with --preset or --map."""
    run = RunFolder(run_dir)
    source = import_source(preset, map, value, default, license, locale, mapping)
    run = curate_corpus(input or run_dir, curation_config(config, run, target=target), run, source=source,
                        progress=True)
    counts = run.manifest().get("counts", {})
    console.print(f"[green]done[/green]: {sum(counts.values())} curated records "
                  f"({', '.join(f'{k} {v}' for k, v in counts.items())}) in {run.curated}\n"
                  f"set aside: {run.rejected}\nreport: {run.report / 'report.md'}")


app.command()(audit)


@app.command()
def doctor() -> None:
    """What is installed, cached, configured and reachable."""
    table = Table("check", "status", "detail")
    colour = {"ok": "green", "warn": "yellow", "missing": "red"}
    rows = doctor_report()
    for check, status, detail in rows:
        table.add_row(check, f"[{colour[status]}]{status}[/{colour[status]}]", detail)
    out.print(table)
    if any(status == "missing" for _, status, _ in rows):
        raise typer.Exit(1)


# Each later stage owns its commands in a module of its own (a Typer app), registered here by name.
STAGE_APPS = {
    "review": "psychosafe.cli.review",
    "publish": "psychosafe.cli.publish",
    "train": "psychosafe.cli.train",
    "eval": "psychosafe.cli.eval",
    "serve": "psychosafe.cli.serve",
}
for _name, _module in STAGE_APPS.items():
    if importlib.util.find_spec(_module) is not None:
        app.add_typer(importlib.import_module(_module).app, name=_name)


def run() -> None:
    """The command line, run with its errors printed as messages (exit 2), not tracebacks."""
    datasets.disable_progress_bars()  # our own progress bar says what matters
    if not sys.stderr.isatty():
        # Usage errors and tracebacks as plain text, unboxed and unwrapped, for a log or a pipe.
        app.rich_markup_mode = None
        app.pretty_exceptions_enable = False
    try:
        app()
    except PsychosafeError as exc:
        console.print(f"[red]error[/red]: {escape(str(exc))}", highlight=False)
        sys.exit(2)
    except SystemExit as exc:
        if exc.code == 130:  # Typer's exit for Ctrl-C
            console.print("[yellow]interrupted[/yellow]: run the same command with the same --run-dir to resume")
        raise
    except Exception:
        # Importing distilabel installs rich's traceback hook, which prints every frame's local variables (configs,
        # keys): an unexpected error goes back to Typer's hook, which shows none (plain text off a terminal).
        sys.excepthook = typer.main.except_hook
        raise
