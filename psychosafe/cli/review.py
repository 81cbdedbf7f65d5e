"""`psychosafe review push | pull | status`: the Argilla review queue. Thin: options -> config -> library call."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .options import console, out

# The stage is imported by each command, not here: importing psychosafe.curation loads distilabel and datasets,
# which every `psychosafe` invocation (even --help) would pay for, before the CLI has quieted their warnings.

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Human review in Argilla (server from ARGILLA_API_URL / ARGILLA_API_KEY or "
                       "configs/review.yaml).")

ReviewConfigOpt = typer.Option(None, "--config", "-c", help="review config YAML (default: configs/review.yaml)")
RunDirOpt = typer.Option(..., "--run-dir", help="a run folder with curated/ (or synthesized/)")
DatasetOpt = typer.Option(None, "--dataset", help="Argilla dataset name (default: the config's)")
WorkspaceOpt = typer.Option(None, "--workspace", help="Argilla workspace (default: the config's)")
MinSubmittedOpt = typer.Option(None, "--min-submitted", min=1,
                               help="submitted responses a record needs (pull: default the dataset's)")


@app.command()
def push(run_dir: Path = RunDirOpt, config: Optional[Path] = ReviewConfigOpt, dataset: Optional[str] = DatasetOpt,
         workspace: Optional[str] = WorkspaceOpt, min_submitted: Optional[int] = MinSubmittedOpt,
         select: Optional[str] = typer.Option(None, help="comma-separated rules: all, low_scores, flagged, sample"),
         sample_per_domain: Optional[int] = typer.Option(None,
                                                         help="records per domain for the `sample` rule"),
         flags: Optional[str] = typer.Option(None, help="comma-separated flag codes or groups (label_suspect, "
                                                        "contact, duplicate) the `flagged` rule picks; alone, it "
                                                        "implies --select flagged"),
         audit: Optional[Path] = typer.Option(None, "--audit", help="also show and queue the flags of this audit "
                                                                    "(RUN/audit, or its run folder); the run's own "
                                                                    "audit/ is always read")) -> None:
    """Push a run's records (all, or those the selection picks) into the review queue. A run `psychosafe audit`
    wrote into is pushed with its flags: `--select flagged --flags label_suspect,other_locale_contact`."""
    from psychosafe.core.runs import RunFolder
    from psychosafe.curation.review import load_review_config, push_review
    from psychosafe.curation.review.selection import audit_flags

    rules = select.split(",") if select else (["flagged"] if flags else None)
    cfg = load_review_config(config, dataset=dataset, workspace=workspace, min_submitted=min_submitted,
                             **{"select.rules": rules, "select.sample_per_domain": sample_per_domain,
                                "select.flags": flags.split(",") if flags else None})
    result = push_review(RunFolder(run_dir), cfg, flags=audit_flags(audit) if audit else None)
    counts = result["counts"]
    queues = ", ".join(f"{q['name']} ({counts[label]})" for label, q in result["queues"].items()) or "no queue"
    console.print(f"[green]pushed[/green] {counts['selected']} of {counts['in_run']} records to "
                  f"{result['url']} ({cfg.workspace}: {queues}): {counts['created']} created, "
                  f"{counts['updated']} updated, {counts['unchanged']} unchanged")
    if counts["untrusted_judge"]:
        console.print(f"{counts['untrusted_judge']} record(s) the judge holds back on a criterion it is not trusted "
                      "on were queued for a person to decide (review/judge_trust.json)")
    if counts["with_audit_flags"]:
        console.print(f"{counts['with_audit_flags']} record(s) carry the audit's flags (shown beside the response)")
    console.print(f"log: {Path(run_dir) / 'review' / 'push.json'}")


@app.command()
def pull(run_dir: Path = RunDirOpt, config: Optional[Path] = ReviewConfigOpt, dataset: Optional[str] = DatasetOpt,
         workspace: Optional[str] = WorkspaceOpt, min_submitted: Optional[int] = MinSubmittedOpt,
         rule: Optional[str] = typer.Option(None, help="several annotators: majority or unanimity")) -> None:
    """Merge submitted responses into the run: review/dataset, summary.json, report.md."""
    from psychosafe.core.runs import RunFolder
    from psychosafe.curation.review import load_review_config, pull_review

    cfg = load_review_config(config, dataset=dataset, workspace=workspace, rule=rule)
    summary = pull_review(RunFolder(run_dir), cfg, min_submitted=min_submitted)
    console.print("[green]merged[/green]: " + ", ".join(f"{k} {v}" for k, v in summary["statuses"].items())
                  + f" ({summary['annotators']} annotators, rule {summary['rule']})")
    trust = summary["judge_trust"]
    console.print(f"judge trusted on: {', '.join(trust['trusted']) or 'no criterion'}"
                  + (f"; not on: {', '.join(trust['untrusted'])}" if trust["untrusted"] else "")
                  + f" ({trust['reviewed']} reviewed records)")
    review = Path(run_dir) / "review"
    console.print(f"dataset: {review / 'dataset'}\nreport: {review / 'report.md'}\nsummary: {review / 'summary.json'}"
                  f"\njudge trust: {review / 'judge_trust.json'}")


@app.command()
def status(config: Optional[Path] = ReviewConfigOpt, dataset: Optional[str] = DatasetOpt,
           workspace: Optional[str] = WorkspaceOpt) -> None:
    """Progress of the review queue per domain and per annotator."""
    from psychosafe.curation.review import load_review_config, review_status

    progress = review_status(load_review_config(config, dataset=dataset, workspace=workspace))

    queues = ", ".join(f"{label} {n}" for label, n in progress["queues"].items() if n)
    out.print(f"{progress['workspace']}/{progress['dataset']} at {progress['url']}: {progress['records']} records "
              f"({queues}), {progress['min_submitted']} submitted response(s) needed each")
    domains = Table("domain", "records", "with a response", "completed")
    for domain, c in progress["per_domain"].items():
        domains.add_row(domain, str(c["records"]), str(c["with_responses"]), str(c["completed"]))
    out.print(domains)
    annotators = Table("annotator", "submitted", "draft", "discarded")
    for user, c in progress["per_annotator"].items():
        annotators.add_row(user, str(c["submitted"]), str(c["draft"]), str(c["discarded"]))
    out.print(annotators if progress["per_annotator"] else "no responses yet")
