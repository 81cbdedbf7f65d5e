"""`psychosafe train`: LoRA fine-tuning (SFT or DPO) on a run's curated dataset.
Thin: options -> config -> train_run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .options import console, out

app = typer.Typer(add_completion=False, help="LoRA fine-tuning (TRL SFT or DPO + PEFT) on a run's curated dataset.")

RunDirOpt = typer.Option(..., "--run-dir", help="a run folder with curated/ (outputs go to its train/)")
ConfigOpt = typer.Option(None, "--config", "-c", help="training config (default: configs/train-lora.yaml)")
MaxStepsOpt = typer.Option(None, "--max-steps",
                           help="stop after N optimizer steps (training.max_steps; overrides num_train_epochs)")
DryRunOpt = typer.Option(False, "--dry-run", help="print the resolved plan and stop before training")


def _loss(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


@app.callback(invoke_without_command=True)
def train(run_dir: Path = RunDirOpt, config: Optional[Path] = ConfigOpt, max_steps: Optional[int] = MaxStepsOpt,
          dry_run: bool = DryRunOpt) -> None:
    """Train a LoRA adapter on PATH/curated into PATH/train/adapter."""
    from psychosafe.train import DEFAULT_TRAIN_CONFIG, load_train_config, train_run

    config_file = config or DEFAULT_TRAIN_CONFIG
    cfg = load_train_config(config_file, max_steps=max_steps)

    def print_plan(plan) -> None:
        table = Table("plan", "", show_header=False, title="dry run: nothing trained" if dry_run else "training plan")
        for what, value in plan.rows():
            table.add_row(what, value)
        out.print(table)

    result = train_run(cfg, run_dir, config_file=config_file, dry_run=dry_run, on_plan=print_plan)
    if result.output:
        s = result.summary
        console.print(f"[green]done[/green]: {s['steps']} steps, train loss {_loss(s['first_train_loss'])} -> "
                      f"{_loss(s['final_train_loss'])}, {s['tokens_per_second']:.0f} tokens/s")
        console.print(f"adapter: {result.adapter}\nloss curve: {result.output / 'loss.png'}\n"
                      f"model card: {result.output / 'README.md'}")
