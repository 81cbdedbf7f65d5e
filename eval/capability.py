"""Capability check: an lm-evaluation-harness task (the paper used MMLU and HellaSwag) on the model under test,
so a comparison shows whether safety training cost general ability. lm-eval is optional; its tasks fetch
their data from the Hub, so this needs a network or a filled HF cache."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from psychosafe.core.backends import ensure_smollm2
from psychosafe.core.config import LLMConfig
from psychosafe.core.io import write_json_atomic
from psychosafe.errors import PsychosafeError

from .generate import with_adapter
from .report import CAPABILITY_FILE


def require_lm_eval() -> None:
    if importlib.util.find_spec("lm_eval") is None:
        raise PsychosafeError("the capability check needs lm-evaluation-harness: pip install lm-eval "
                              "(its tasks download their data from the Hugging Face Hub)")


def run_capability(config: LLMConfig, tasks: list[str], folder: Path, *, limit: int | None = 100,
                   batch_size: int = 8, adapter: Path | None = None) -> dict[str, dict[str, float]]:
    """Run the tasks with lm-eval's Hugging Face backend; write `capability.json` (task -> metric -> value) into
    the eval folder, where its report and `eval compare` pick it up."""
    require_lm_eval()
    if not tasks:
        raise PsychosafeError("name at least one lm-evaluation-harness task, e.g. --task hellaswag")
    if adapter:
        config = with_adapter(config, adapter, folder / "generation")
    if config.backend not in ("embedded", "transformers"):
        raise PsychosafeError("the capability check runs a local model (embedded or transformers backend)")
    model = str(ensure_smollm2()) if config.backend == "embedded" else config.model
    import lm_eval

    results = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={model},dtype={config.dtype}",
                                      tasks=tasks, limit=limit, batch_size=batch_size, device=config.device)
    out = {task: {metric.split(",")[0]: float(value) for metric, value in values.items()
                  if isinstance(value, (int, float)) and "stderr" not in metric}
           for task, values in results["results"].items()}
    write_json_atomic(folder / CAPABILITY_FILE, out)
    return out
