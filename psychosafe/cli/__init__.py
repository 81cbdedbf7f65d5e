"""The command line (the app layer): one Typer app per stage, registered on `main.app`.

`main` is the console script. It settles what third-party output gets through before the stages are imported:
importing them imports distilabel, pydantic and transformers, whose warnings come at import time. Hence the
imports inside the functions here."""

from __future__ import annotations

import sys

from .options import quiet_third_party, verbose_requested


def main() -> None:
    if not verbose_requested(sys.argv[1:]):
        quiet_third_party()
    from .main import run

    run()


def __getattr__(name: str):
    if name == "app":  # `from psychosafe.cli import app`, for tests and notebooks
        from .main import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app", "main"]
