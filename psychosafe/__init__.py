"""psychosafe: rebuild, curate, review, publish, train on and evaluate psychologically-informed refusals."""

import multiprocessing as _mp

__version__ = "0.1.0"

# distilabel's workers, forked from a server process that has imported the stack once: every pipeline then starts
# in seconds less than with `spawn`, whose workers each import torch, transformers and distilabel anew (about 4 s a
# pipeline on 2 cores, and a rebuild runs a dozen pipelines). Not plain `fork`: with it, any torch computation in the
# parent before a pipeline runs makes the generation worker hang (ENVIRONMENT.md); the fork server never computes.
# A module the server cannot import is skipped (the workers import it themselves).
WORKER_PRELOAD = ["torch", "transformers", "distilabel.pipeline", "distilabel.steps.tasks", "psychosafe.pipelines"]

if _mp.get_start_method(allow_none=True) is None:
    if "forkserver" in _mp.get_all_start_methods():
        _mp.set_start_method("forkserver")
        _mp.set_forkserver_preload(WORKER_PRELOAD)
    else:  # Windows
        _mp.set_start_method("spawn")
