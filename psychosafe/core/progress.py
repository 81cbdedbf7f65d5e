"""The one progress bar of the project (rich): long work shows how far it is; a quiet call hides it."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator


@dataclass
class ProgressBar:
    """What a caller moves: `advance(n)` or `update(completed)`."""

    _progress: Any
    _task: Any

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)

    def update(self, completed: int) -> None:
        self._progress.update(self._task, completed=completed)


@contextlib.contextmanager
def progress_bar(label: str, total: int | None, *, show: bool = True, completed: int = 0,
                 transient: bool = False) -> Iterator[ProgressBar]:
    """A bar with the label, the count done of `total`, elapsed and remaining time. `show=False` draws nothing
    (tests, library calls); `transient` removes it when done (short inner work such as one search)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                  disable=not show, transient=transient) as progress:
        yield ProgressBar(progress, progress.add_task(label, total=total, completed=completed))
