"""What every command shares: the consoles and the common options."""

from __future__ import annotations

import typer
from rich.console import Console

# Messages go to stderr, results to stdout. soft_wrap: a long line (a file path in an error) is never broken at the
# terminal's width, so a log of stderr holds it whole.
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

RunDirOpt = typer.Option(None, "--run-dir", help="run folder; reuse one to resume it (default: runs/<name>-<time>)")
