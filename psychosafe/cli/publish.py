"""`psychosafe publish`: build the Hub repository of a curated run and push it (thin: options -> publish_run())."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .options import console

app = typer.Typer(add_completion=False, help="Publish a curated run as a Hugging Face Hub dataset repository.")


@app.callback(invoke_without_command=True)
def publish(
    run_dir: Path = typer.Option(..., "--run-dir", help="a run folder with curated/"),
    repo_id: str = typer.Option(..., "--repo-id", help="ORG/NAME of the dataset repository"),
    private: bool = typer.Option(False, "--private", help="create the repository private (if it does not exist)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="only write the repository into RUN/publish/"),
    revision: Optional[str] = typer.Option(None, "--revision",
                                           help="branch to commit to (created if missing; default main)"),
    tag: Optional[str] = typer.Option(None, "--tag", help="tag the new commit, e.g. v1.0"),
    force: bool = typer.Option(False, "--force", help="publish records the guards block; the card says so"),
    exclude_blocked: bool = typer.Option(False, "--exclude-blocked", help="publish only records that pass the guards"),
    config: Optional[Path] = typer.Option(None, "--config", "-c",
                                          help="publish config (default: configs/publish.yaml)"),
    endpoint: Optional[str] = typer.Option(None, "--endpoint", envvar="HF_ENDPOINT",
                                           help="Hub URL (default: huggingface.co)"),
) -> None:
    """Write RUN/publish/ (parquet shards per split under data/ and a README.md dataset card) and, unless
    --dry-run, push it to the Hub in one commit. Token: HF_TOKEN or `hf auth login`."""
    # imported here, not at the top: psychosafe.curation loads distilabel and datasets (see cli/review.py)
    from psychosafe.curation.publish import load_publish_config, publish_run

    result = publish_run(run_dir, repo_id, load_publish_config(config), dry_run=dry_run, private=private,
                         revision=revision, tag=tag, force=force, exclude_blocked=exclude_blocked, endpoint=endpoint)
    counts = ", ".join(f"{name} {n}" for name, n in result.splits.items())
    if result.forced:
        console.print(f"[yellow]warning[/yellow]: --force: {len(result.blocked)} blocked record(s) included; "
                      "the card says so")
    if result.excluded:
        console.print(f"[yellow]withheld[/yellow]: {result.excluded} blocked record(s) (--exclude-blocked)")
    console.print(f"[green]built[/green]: {result.folder} ({counts}; {len(result.files)} files)")
    if result.url:
        console.print(f"[green]published[/green]: commit {result.commit[:10]}"
                      + (f", tag {result.tag}" if result.tag else ""))
        typer.echo(result.url)
