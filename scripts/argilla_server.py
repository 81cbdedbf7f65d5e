#!/usr/bin/env python3
"""A local Argilla server without Docker: Redis, osmem (an in-memory OpenSearch emulator) and
argilla-server 2.8.0 with SQLite, all on 127.0.0.1, all state in one folder.

    python scripts/argilla_server.py start      # prints the URL; the owner's API key is in STATE/server.json
    eval "$(python scripts/argilla_server.py env)"   # sets ARGILLA_API_URL and ARGILLA_API_KEY
    python scripts/argilla_server.py add-user alice --password 'a-long-password'   # an annotator
    python scripts/argilla_server.py status
    python scripts/argilla_server.py stop

Needs `make argilla-server` first (the server virtualenv .venv-argilla and Redis from Debian).
The tests start their own instance with `start(state_dir, port=0)` and stop it afterwards.

The records, users and annotations live in SQLite (STATE/argilla.db) and survive a restart; the
search index lives in osmem's memory, so `start` rebuilds it from the database when one exists.
Standard library only: it runs under any Python 3.
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
DEFAULT_STATE = REPO / ".state" / "argilla"
DEFAULT_PORT = 6900
# A known key for a server that only listens on 127.0.0.1; tests and local use read it from server.json.
DEFAULT_API_KEY = "psychosafe.local.apikey"
DEFAULT_PASSWORD = "psychosafe-local"
OWNER = "argilla"  # the username argilla-server's `create_default` gives the owner
READY_TIMEOUT = 180.0


class ServerError(RuntimeError):
    pass


def server_venv() -> Path:
    return Path(os.environ.get("ARGILLA_SERVER_VENV") or REPO / ".venv-argilla")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http_ok(url: str, api_key: str | None = None, timeout: float = 2.0) -> bool:
    request = urllib.request.Request(url, headers={"X-Argilla-Api-Key": api_key} if api_key else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _state_file(state: Path) -> Path:
    return state / "server.json"


def read_state(state_dir: str | Path = DEFAULT_STATE) -> dict | None:
    path = _state_file(Path(state_dir))
    return json.loads(path.read_text()) if path.is_file() else None


def _spawn(args: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    # A session of its own: `stop` ends the whole process group, and Ctrl-C in the caller's terminal does not.
    with log.open("ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True, cwd=str(REPO))


def _tail(path: Path, lines: int = 25) -> str:
    if not path.is_file():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _wait(what: str, ready, procs: dict[str, subprocess.Popen], logs: dict[str, Path], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise ServerError(f"{name} exited with code {proc.returncode} while waiting for {what}; "
                                  f"its log ({logs[name]}):\n{_tail(logs[name])}")
        time.sleep(0.3)
    raise ServerError(f"{what} not ready after {timeout:.0f} s; logs in {logs[next(iter(logs))].parent}")


def _run_checked(args: list[str], env: dict, log: Path, what: str) -> None:
    with log.open("ab") as out:
        done = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(REPO))
    if done.returncode != 0:
        raise ServerError(f"{what} failed (exit {done.returncode}); {log}:\n{_tail(log)}")


def start(state_dir: str | Path = DEFAULT_STATE, *, port: int = DEFAULT_PORT, api_key: str = DEFAULT_API_KEY,
          password: str = DEFAULT_PASSWORD, timeout: float = READY_TIMEOUT) -> dict:
    """Start Redis, osmem and argilla-server; wait until the API answers with the owner's key.
    `port=0` picks a free port. Returns the state (url, api_key, pids, ports); idempotent."""
    state = Path(state_dir).resolve()
    current = read_state(state)
    if current and _http_ok(f"{current['url']}/api/v1/me", current["api_key"]):
        return current
    if current:
        stop(state)
    venv = server_venv()
    python = venv / "bin" / "python"
    if not python.is_file():
        raise ServerError(f"no argilla-server virtualenv at {venv}: run `make argilla-server` first")
    redis = _which("redis-server")
    if redis is None:
        raise ServerError("redis-server is not installed: run `make argilla-server` (it installs it from Debian)")

    if port and _port_open(port):
        raise ServerError(f"port {port} on 127.0.0.1 is taken (another Argilla?): pass --port N, or --port 0 for a free one")
    state.mkdir(parents=True, exist_ok=True)
    ports = {"argilla": port or _free_port(), "redis": _free_port(), "osmem": _free_port()}
    logs = {name: state / f"{name}.log" for name in ("redis", "osmem", "argilla")}
    procs: dict[str, subprocess.Popen] = {}
    try:
        procs["redis"] = _spawn([redis, "--port", str(ports["redis"]), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", str(state)], logs["redis"])
        osmem_bin = subprocess.run([str(python), "-c", "import osmem_server; print(osmem_server.resolve_binary())"],
                                   capture_output=True, text=True, check=True).stdout.strip()
        procs["osmem"] = _spawn([osmem_bin, "--addr", f"127.0.0.1:{ports['osmem']}", "--no-stdin-watch"], logs["osmem"])
        _wait("osmem", lambda: _http_ok(f"http://127.0.0.1:{ports['osmem']}/"), procs, logs, 30)
        _wait("redis", lambda: _port_open(ports["redis"]), procs, logs, 30)

        env = os.environ | {
            "ARGILLA_HOME_PATH": str(state),
            "ARGILLA_SEARCH_ENGINE": "osmem",
            "ARGILLA_ELASTICSEARCH": f"http://127.0.0.1:{ports['osmem']}",
            "ARGILLA_REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
            "HF_HUB_DISABLE_TELEMETRY": "1",
        }
        launcher = [str(python), str(Path(__file__).with_name("argilla_engine.py"))]
        existed = (state / "argilla.db").is_file()
        _run_checked([str(python), "-m", "argilla_server", "database", "migrate"], env, logs["argilla"], "database migrate")
        _run_checked([str(python), "-m", "argilla_server", "database", "users", "create_default", "--api-key", api_key,
                      "--password", password, "--quiet"], env, logs["argilla"], "creating the owner user")
        if existed:  # osmem keeps nothing between runs: rebuild the index from the database
            _run_checked(launcher + ["cli", "search-engine", "reindex"], env, logs["argilla"], "search-engine reindex")
        procs["argilla"] = _spawn(launcher + ["--port", str(ports["argilla"])], logs["argilla"], env)
        # Background jobs (recomputing record statuses after a change of min_submitted, Hub import/export)
        # run in an rq worker; through the launcher, so that it searches with the same engine.
        logs["worker"] = state / "worker.log"
        procs["worker"] = _spawn(launcher + ["cli", "worker", "--num-workers", "1"], logs["worker"], env)
        url = f"http://127.0.0.1:{ports['argilla']}"
        info = {"url": url, "api_key": api_key, "owner": OWNER, "password": password, "ports": ports,
                "pids": {name: p.pid for name, p in procs.items()}, "state_dir": str(state)}
        # Written before waiting, so that `stop` can end a server that never became ready.
        _state_file(state).write_text(json.dumps(info, indent=2) + "\n")
        os.chmod(_state_file(state), 0o600)  # it holds the owner's key and password
        _wait("argilla-server", lambda: _http_ok(f"{url}/api/v1/me", api_key), procs, logs, timeout)
        return info
    except BaseException:
        _kill_groups([p.pid for p in procs.values()])
        _state_file(state).unlink(missing_ok=True)
        raise


def _which(name: str) -> str | None:
    from shutil import which

    return which(name) or next((str(p) for p in (Path("/usr/bin") / name, Path("/usr/sbin") / name) if p.is_file()), None)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _kill_groups(pids: list[int], grace: float = 10.0) -> None:
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        for pid in pids:  # reap our own children so they do not linger as zombies
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def stop(state_dir: str | Path = DEFAULT_STATE) -> bool:
    """Stop the server, osmem and Redis started from this state folder. False if none was running."""
    state = Path(state_dir).resolve()
    info = read_state(state)
    if not info:
        return False
    # Server first, so it does not log connection errors from a vanished Redis or search engine.
    order = [info["pids"][n] for n in ("worker", "argilla", "osmem", "redis") if n in info["pids"]]
    _kill_groups(order)
    _state_file(state).unlink(missing_ok=True)
    return True


def status(state_dir: str | Path = DEFAULT_STATE) -> dict:
    info = read_state(state_dir)
    if not info:
        return {"running": False, "state_dir": str(Path(state_dir).resolve())}
    return {"running": _http_ok(f"{info['url']}/api/v1/me", info["api_key"]), "url": info["url"],
            "owner": info["owner"], "pids": info["pids"], "state_dir": info["state_dir"]}


def _api(info: dict, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(f"{info['url']}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"X-Argilla-Api-Key": info["api_key"], "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise ServerError(f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')[:300]}") from None


def add_user(state_dir: str | Path, username: str, password: str, *, role: str = "annotator",
             workspace: str = "argilla") -> dict:
    """An annotator (or admin) who can log in to the UI and answer the review queue in `workspace`."""
    info = read_state(state_dir)
    if not info:
        raise ServerError("not running: start it with `python scripts/argilla_server.py start`")
    user = _api(info, "POST", "/api/v1/users", {"first_name": username, "username": username, "password": password,
                                                 "role": role})
    workspaces = {w["name"]: w["id"] for w in _api(info, "GET", "/api/v1/me/workspaces")["items"]}
    if workspace not in workspaces:
        workspaces[workspace] = _api(info, "POST", "/api/v1/workspaces", {"name": workspace})["id"]
    _api(info, "POST", f"/api/v1/workspaces/{workspaces[workspace]}/users", {"user_id": user["id"]})
    return {"username": user["username"], "role": user["role"], "workspace": workspace}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["start", "stop", "status", "env", "add-user"])
    parser.add_argument("username", nargs="?", help="add-user: the annotator's username")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE, help=f"default: {DEFAULT_STATE}")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="argilla's port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the owner's API key (only used when first created)")
    parser.add_argument("--password", default=None,
                        help="start: the owner's UI password (only when first created); add-user: the new user's (8+ characters)")
    parser.add_argument("--role", default="annotator", choices=["annotator", "admin"], help="add-user: the role")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            info = start(args.state_dir, port=args.port, api_key=args.api_key, password=args.password or DEFAULT_PASSWORD)
            print(f"Argilla is up at {info['url']} (UI login: {info['owner']}, password in {_state_file(Path(info['state_dir']))})")
            where = "" if Path(args.state_dir).resolve() == DEFAULT_STATE else f" --state-dir {args.state_dir}"
            print(f'Point psychosafe at it: eval "$(python {Path(__file__).relative_to(REPO)} env{where})"')
        elif args.command == "stop":
            print("stopped" if stop(args.state_dir) else "not running")
        elif args.command == "add-user":
            if not args.username or not args.password:
                raise ServerError("add-user needs a username and --password (8+ characters)")
            user = add_user(args.state_dir, args.username, args.password, role=args.role)
            print(f"{user['role']} {user['username']} can log in and annotate in workspace {user['workspace']}")
        elif args.command == "env":
            info = read_state(args.state_dir)
            if not info:
                raise ServerError("not running: start it with `python scripts/argilla_server.py start`")
            print(f"export ARGILLA_API_URL={info['url']}\nexport ARGILLA_API_KEY={info['api_key']}")
        else:
            current = status(args.state_dir)
            print(json.dumps(current, indent=2))
            return 0 if current["running"] else 1
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
