"""psychosafe: rebuild, curate, review, publish, train on and evaluate psychologically-informed refusals."""

import multiprocessing as _mp

__version__ = "0.1.0"

# distilabel fixes its worker context when `distilabel.pipeline` is first imported. With the default
# `fork`, any torch computation in the parent before a pipeline runs makes the generation worker hang
# (ENVIRONMENT.md), so every process that imports psychosafe uses `spawn` unless told otherwise.
if _mp.get_start_method(allow_none=True) is None:
    _mp.set_start_method("spawn")
