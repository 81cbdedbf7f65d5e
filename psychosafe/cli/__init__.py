"""The command line (the app layer): one Typer app per stage, registered on `main.app`."""

from .main import app, main

__all__ = ["app", "main"]
