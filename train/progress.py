"""A rich progress bar for the Trainer, in place of its tqdm bars: steps, the last loss, tokens seen."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from transformers import TrainerCallback


class RichProgress(TrainerCallback):
    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.progress: Progress | None = None
        self.task = None

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self.progress = Progress(TextColumn("[bold]train[/bold]"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[loss]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                 console=self.console, transient=False)
        self.progress.start()
        self.task = self.progress.add_task("train", total=state.max_steps, completed=state.global_step, loss="")

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.progress is not None and logs and "loss" in logs:
            self.progress.update(self.task, loss=f"loss {logs['loss']:.4f}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


class TokenMeter(TrainerCallback):
    """Tokens trained on and seconds spent in this session (a resumed run counts only its own part)."""

    def __init__(self):
        self.tokens = self.seconds = 0
        self._start = (0, 0.0)

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = (state.num_input_tokens_seen, time.perf_counter())

    def on_train_end(self, args, state, control, **kwargs):
        self.tokens = state.num_input_tokens_seen - self._start[0]
        self.seconds = time.perf_counter() - self._start[1]

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0
