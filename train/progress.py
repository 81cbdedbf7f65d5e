"""Trainer callbacks: the project's progress bar in place of the Trainer's tqdm bars, and a token meter.
(A callback subclasses transformers' TrainerCallback, so this module imports transformers at the top.)"""

from __future__ import annotations

import contextlib
import time

from transformers import TrainerCallback

from psychosafe.core.progress import ProgressBar, progress_bar


class TrainProgress(TrainerCallback):
    """Optimizer steps done of the run's total, on the main process only (the loss goes to log.jsonl)."""

    def __init__(self, show: bool = True):
        self.show = show
        self._stack = contextlib.ExitStack()
        self._bar: ProgressBar | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self._bar = self._stack.enter_context(progress_bar("train", state.max_steps, show=self.show,
                                                               completed=state.global_step))

    def on_step_end(self, args, state, control, **kwargs):
        if self._bar is not None:
            self._bar.update(state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        self._stack.close()
        self._bar = None


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
