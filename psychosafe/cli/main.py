"""The command line. Thin: each command parses options, builds a config and calls one library function."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from psychosafe.errors import PsychosafeError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Rebuild, curate, review, publish, train on and evaluate a corpus of psychologically-informed refusals.")
from .options import RunDirOpt, console, out

ConfigOpt = typer.Option(None, "--config", "-c", help="run config YAML (default: configs/embedded.yaml)")

RayOpt = typer.Option(False, "--ray", help="run the pipelines as distilabel RayPipelines (a local Ray unless --ray-address)")
RayAddressOpt = typer.Option(None, "--ray-address", help="Ray cluster to join, e.g. auto or ray://head:10001 (implies --ray)")


def _config(path: Optional[Path], **overrides):
    from psychosafe.core.config import load_rebuild_config

    return load_rebuild_config(path, **overrides)


def _executor_overrides(ray: bool, ray_address: Optional[str]) -> dict:
    # Without either flag the config's own executor stands.
    return {"executor": "ray", "ray_address": ray_address} if ray or ray_address else {}


@app.command()
def rebuild(config: Optional[Path] = ConfigOpt, target: Optional[int] = typer.Option(None, help="number of prompts"),
            run_dir: Optional[Path] = RunDirOpt, ray: bool = RayOpt, ray_address: Optional[str] = RayAddressOpt) -> None:
    """Synthesize and curate, end to end."""
    from psychosafe.app.rebuild import rebuild as run_rebuild

    cfg = _config(config, target=target, **_executor_overrides(ray, ray_address))
    run = run_rebuild(cfg, run_dir)
    counts = run.manifest().get("counts", {})
    console.print(f"[green]done[/green]: {sum(counts.values())} curated records "
                  f"({', '.join(f'{k} {v}' for k, v in counts.items())})")
    console.print(f"run folder: {run.path}\nreport: {run.report / 'report.md'}")


@app.command()
def synthesize(config: Optional[Path] = ConfigOpt, target: Optional[int] = typer.Option(None, help="number of prompts"),
               run_dir: Optional[Path] = RunDirOpt, ray: bool = RayOpt, ray_address: Optional[str] = RayAddressOpt) -> None:
    """Seeds and synthesized prompts -> responses, baselines, self-critique and revision, judge (rebuild's first half)."""
    from psychosafe.core.runs import DEFAULT_RUNS_DIR
    from psychosafe.app.rebuild import synthesize as run_synthesize
    from psychosafe.core.runs import RunFolder

    cfg = _config(config, target=target, **_executor_overrides(ray, ray_address))
    run = RunFolder(run_dir) if run_dir else RunFolder.new(DEFAULT_RUNS_DIR, cfg.name)
    records = run_synthesize(cfg, run)
    console.print(f"[green]done[/green]: {len(records)} records in {run.synthesized / 'dataset'}")


@app.command()
def curate(run_dir: Path = typer.Option(..., "--run-dir", help="run folder to write curated/, rejected/, report/ into"),
           input: Optional[Path] = typer.Option(
               None, "--input", "-i", help="corpus: a run folder, a saved dataset folder, .parquet or .jsonl "
                                           "(default: what --run-dir synthesized)"),
           config: Optional[Path] = typer.Option(
               None, "--config", "-c", help="run config YAML (default: the run's own config, else the library defaults)"),
           target: Optional[int] = typer.Option(None, help="records to keep after balancing")) -> None:
    """Curate any corpus: dedup (exact, semantic), template collapse, checks, scores, balance, splits, report."""
    from psychosafe.curation import curate_corpus
    from psychosafe.curation.curate import curation_config
    from psychosafe.core.runs import RunFolder

    run = RunFolder(run_dir)
    run = curate_corpus(input or run_dir, curation_config(config, run, target=target), run, progress=True)
    counts = run.manifest().get("counts", {})
    console.print(f"[green]done[/green]: {sum(counts.values())} curated records "
                  f"({', '.join(f'{k} {v}' for k, v in counts.items())}) in {run.curated}\n"
                  f"set aside: {run.rejected}\nreport: {run.report / 'report.md'}")


@app.command()
def doctor() -> None:
    """What is installed, cached, configured and reachable."""
    from psychosafe.app.doctor import doctor_report

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


def main() -> None:
    import datasets

    datasets.disable_progress_bars()  # our own progress bar says what matters
    try:
        app()
    except PsychosafeError as exc:
        console.print(f"[red]error[/red]: {exc}")
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]: run the same command with the same --run-dir to resume")
        sys.exit(130)


if __name__ == "__main__":
    main()
