"""What every command shares: the consoles, the common options and what third-party output the CLI lets through."""

from __future__ import annotations

import logging
import os
import sys
import warnings

import typer
from rich.console import Console

# Wide enough that no line or table cell of ours is ever broken; only used where the output is not a terminal.
UNWRAPPED_WIDTH = 10_000


def _console(stderr: bool) -> Console:
    # soft_wrap: a long line (a file path in an error) is never broken at the terminal's width. Where the stream is
    # not a terminal (a log, a pipe, a test) there is no width to fit either, so tables keep their cells whole too.
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, soft_wrap=True, width=None if stream.isatty() else UNWRAPPED_WIDTH)


# Messages go to stderr, results to stdout.
console = _console(stderr=True)
out = _console(stderr=False)

RunDirOpt = typer.Option(None, "--run-dir", help="run folder; reuse one to resume it (default: runs/<name>-<time>)")
VerboseOpt = typer.Option(False, "--verbose", "-v",
                          help="let the libraries' warnings, log lines and progress bars through")

# Set for this process and inherited by what it starts (distilabel's spawned workers, the servers), which read them
# when they import the libraries: warnings, transformers' advice, tqdm bars and distilabel's INFO/WARNING lines.
QUIET_ENV = {
    "PYTHONWARNINGS": "ignore",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "TQDM_DISABLE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "DISTILABEL_LOG_LEVEL": "ERROR",
}
QUIET_LOGGERS = ("transformers", "sentence_transformers", "datasets", "huggingface_hub", "distilabel", "accelerate",
                 "peft", "trl", "httpx", "argilla")


def verbose_requested(argv: list[str]) -> bool:
    """Whether the top-level --verbose / -v (before the command's name) is among the arguments."""
    for arg in argv:
        if not arg.startswith("-"):
            return False
        if arg in ("--verbose", "-v"):
            return True
    return False


def quiet_third_party() -> None:
    """Keep the libraries' own output (warnings, advice, tqdm bars, log lines) off the CLI's terminal; psychosafe's
    progress bars and messages stay. `--verbose` skips this."""
    os.environ.update(QUIET_ENV)
    warnings.simplefilter("ignore")
    warnings.filterwarnings("default", module=r"psychosafe(\.|$)")  # ours still show
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
