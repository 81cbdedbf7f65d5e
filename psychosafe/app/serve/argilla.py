"""A local Argilla server without Docker: Redis, osmem (an in-memory OpenSearch emulator) and
argilla-server 2.8.0 with SQLite, all state in one folder. Redis and osmem always listen on 127.0.0.1;
argilla-server too, unless asked to listen elsewhere for a small team (`--host 0.0.0.0`).

    psychosafe serve argilla start      # prints the URL; the owner's API key is in STATE/server.json
    psychosafe serve argilla start --host 0.0.0.0   # for annotators on the network: owner key and password generated
    eval "$(psychosafe serve argilla env)"   # sets ARGILLA_API_URL and ARGILLA_API_KEY
    psychosafe serve argilla add-user alice --password 'a-long-password'   # an annotator
    psychosafe serve argilla status
    psychosafe serve argilla stop

argilla-server needs click<8.2 and huggingface-hub<1, so it runs from a virtualenv of its own (see
`server_venv`; `make argilla-server` makes .venv-argilla in a checkout), with Redis from Debian. The
tests start their own instance with `start(state_dir, port=0)` and stop it afterwards.

The records, users and annotations live in SQLite (STATE/argilla.db) and survive a restart; the
search index lives in osmem's memory, so `start` rebuilds it from the database when one exists.

On 127.0.0.1 alone the owner has a fixed, published key and password: right for one machine, where only its user
can reach the server. Listening anywhere else, the published ones are refused: the owner's key and password are
generated (or taken from the caller), kept in STATE/owner.json readable by the user alone, reused at the next
start, and never printed or logged; the state folder (the database holds every user's key) is the user's alone.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from shutil import which
from socket import gethostname

from psychosafe.app.serve.process import ServerError, end_process_groups, find_venv, free_port, log_tail, port_open

DEFAULT_STATE = Path(".state") / "argilla"
DEFAULT_PORT = 6900
# A known key for a server that only listens on 127.0.0.1; tests and local use read it from server.json.
DEFAULT_API_KEY = "psychosafe.local.apikey"
DEFAULT_PASSWORD = "psychosafe-local"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
OWNER = "argilla"  # the username argilla-server's `create_default` gives the owner
# Sets the owner's key and password (creating the owner on a new database), read from the environment: a command
# line is visible to every user of the machine, a process's environment only to its own user.
OWNER_SCRIPT = """
import asyncio, os
from argilla_server.cli.database.users.utils import get_or_new_workspace
from argilla_server.constants import DEFAULT_USERNAME
from argilla_server.contexts import accounts
from argilla_server.database import AsyncSessionLocal
from argilla_server.models import User, UserRole

async def main():
    key, password = os.environ["PSYCHOSAFE_OWNER_API_KEY"], os.environ["PSYCHOSAFE_OWNER_PASSWORD"]
    async with AsyncSessionLocal() as session:
        owner = await accounts.get_user_by_username(session, DEFAULT_USERNAME)
        if owner is None:
            await User.create(session, first_name="", username=DEFAULT_USERNAME, role=UserRole.owner, api_key=key,
                              password_hash=accounts.hash_password(password),
                              workspaces=[await get_or_new_workspace(session, DEFAULT_USERNAME)])
        elif owner.api_key != key or not accounts.verify_password(password, owner.password_hash):
            await owner.update(session, api_key=key, password_hash=accounts.hash_password(password))

asyncio.run(main())
"""
READY_TIMEOUT = 180.0
# The launcher runs inside the server's virtualenv: a file of this package, never imported here.
ENGINE = Path(__file__).with_name("argilla_engine.py")
VENV_ENV, VENV_FOLDER = "ARGILLA_SERVER_VENV", ".venv-argilla"
CREATE_VENV = ('python3 -m venv {venv} && {venv}/bin/pip install "argilla-server==2.8.0" "click<8.2" '
               '"huggingface-hub<1" "osmem-server==0.1.6"')


def server_venv() -> Path:
    """The argilla-server virtualenv ($ARGILLA_SERVER_VENV, ./.venv-argilla, or under the user cache dir)."""
    return find_venv(VENV_ENV, VENV_FOLDER, CREATE_VENV, "argilla-server")


def _http_ok(url: str, api_key: str | None = None, timeout: float = 2.0) -> bool:
    request = urllib.request.Request(url, headers={"X-Argilla-Api-Key": api_key} if api_key else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _state_file(state: Path) -> Path:
    return state / "server.json"


def _owner_file(state: Path) -> Path:
    return state / "owner.json"


def _write_private(path: Path, data: dict) -> None:
    """Readable and writable by the user alone from the moment it exists (never world-readable in between)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(data, indent=2) + "\n")


def owner_credentials(state: Path, host: str, api_key: str | None, password: str | None) -> tuple[str, str]:
    """The owner's key and password for a server listening on `host`. On 127.0.0.1: those given, else the published
    defaults. Elsewhere: the published defaults are refused; those given, else the ones kept from the last shared
    start, else new random ones; kept in STATE/owner.json (mode 600)."""
    if host in LOOPBACK:
        return api_key or DEFAULT_API_KEY, password or DEFAULT_PASSWORD
    if api_key == DEFAULT_API_KEY or password == DEFAULT_PASSWORD:
        raise ServerError(f"listening on {host}, anyone on the network could log in with the published default "
                          f"{'API key' if api_key == DEFAULT_API_KEY else 'password'}: leave --api-key and --password "
                          "out to have them generated, or choose your own")
    kept = json.loads(_owner_file(state).read_text()) if _owner_file(state).is_file() else {}
    api_key = api_key or kept.get("api_key") or secrets.token_urlsafe(32)
    password = password or kept.get("password") or secrets.token_urlsafe(18)
    if len(password) < 8:
        raise ServerError("the owner's password needs 8 characters or more")
    _write_private(_owner_file(state), {"username": OWNER, "api_key": api_key, "password": password})
    return api_key, password


def read_state(state_dir: str | Path = DEFAULT_STATE) -> dict | None:
    path = _state_file(Path(state_dir))
    return json.loads(path.read_text()) if path.is_file() else None


def _spawn(args: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    # A session of its own: `stop` ends the whole process group, and Ctrl-C in the caller's terminal does not.
    with log.open("ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True, cwd=str(log.parent))


def _wait(what: str, ready, procs: dict[str, subprocess.Popen], logs: dict[str, Path], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise ServerError(f"{name} exited with code {proc.returncode} while waiting for {what}; "
                                  f"its log ({logs[name]}):\n{log_tail(logs[name], 25)}")
        time.sleep(0.3)
    raise ServerError(f"{what} not ready after {timeout:.0f} s; logs in {logs[next(iter(logs))].parent}")


def _run_checked(args: list[str], env: dict, log: Path, what: str) -> None:
    with log.open("ab") as out:
        done = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(log.parent))
    if done.returncode != 0:
        raise ServerError(f"{what} failed (exit {done.returncode}); {log}:\n{log_tail(log, 25)}")


def start(state_dir: str | Path = DEFAULT_STATE, *, port: int = DEFAULT_PORT, host: str = "127.0.0.1",
          api_key: str | None = None, password: str | None = None, timeout: float = READY_TIMEOUT) -> dict:
    """Start Redis, osmem and argilla-server; wait until the API answers with the owner's key.
    `port=0` picks a free port; `host` is where argilla-server listens (owner_credentials says what that changes).
    Returns the state (url, api_key, pids, ports); idempotent for the same host."""
    state = Path(state_dir).resolve()
    current = read_state(state)
    if current and current.get("host", "127.0.0.1") == host and _http_ok(f"{current['url']}/api/v1/me",
                                                                         current["api_key"]):
        return current
    if current:
        stop(state)
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o700)  # the database holds every user's API key
    api_key, password = owner_credentials(state, host, api_key, password)
    venv = server_venv()
    python = venv / "bin" / "python"
    redis = redis_server()
    if redis is None:
        raise ServerError("redis-server is not installed: install it from Debian (apt-get install redis-server; "
                          "`make argilla-server` does it in a checkout)")

    if port and port_open(port):
        raise ServerError(f"port {port} on 127.0.0.1 is taken (another Argilla?): pass --port N, or --port 0 for a "
                          "free one")
    ports = {"argilla": port or free_port(), "redis": free_port(), "osmem": free_port()}
    logs = {name: state / f"{name}.log" for name in ("redis", "osmem", "argilla")}
    procs: dict[str, subprocess.Popen] = {}
    try:
        procs["redis"] = _spawn([redis, "--port", str(ports["redis"]), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", str(state)], logs["redis"])
        osmem_bin = subprocess.run([str(python), "-c", "import osmem_server; print(osmem_server.resolve_binary())"],
                                   capture_output=True, text=True, check=True).stdout.strip()
        procs["osmem"] = _spawn([osmem_bin, "--addr", f"127.0.0.1:{ports['osmem']}", "--no-stdin-watch"], logs["osmem"])
        _wait("osmem", lambda: _http_ok(f"http://127.0.0.1:{ports['osmem']}/"), procs, logs, 30)
        _wait("redis", lambda: port_open(ports["redis"]), procs, logs, 30)

        env = os.environ | {
            "ARGILLA_HOME_PATH": str(state),
            "ARGILLA_SEARCH_ENGINE": "osmem",
            "ARGILLA_ELASTICSEARCH": f"http://127.0.0.1:{ports['osmem']}",
            "ARGILLA_REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
            "HF_HUB_DISABLE_TELEMETRY": "1",
        }
        launcher = [str(python), str(ENGINE)]
        existed = (state / "argilla.db").is_file()
        _run_checked([str(python), "-m", "argilla_server", "database", "migrate"], env, logs["argilla"],
                     "database migrate")
        _run_checked([str(python), "-c", OWNER_SCRIPT], env | {"PSYCHOSAFE_OWNER_API_KEY": api_key,
                                                               "PSYCHOSAFE_OWNER_PASSWORD": password},
                     logs["argilla"], "setting the owner's key and password")
        if existed:  # osmem keeps nothing between runs: rebuild the index from the database
            _run_checked(launcher + ["cli", "search-engine", "reindex"], env, logs["argilla"], "search-engine reindex")
        procs["argilla"] = _spawn(launcher + ["--host", host, "--port", str(ports["argilla"])], logs["argilla"], env)
        # Background jobs (recomputing record statuses after a change of min_submitted, Hub import/export)
        # run in an rq worker; through the launcher, so that it searches with the same engine.
        logs["worker"] = state / "worker.log"
        procs["worker"] = _spawn(launcher + ["cli", "worker", "--num-workers", "1"], logs["worker"], env)
        # this machine reaches it on loopback whatever it listens on; others, at `shared_url`
        url = f"http://{host if host in LOOPBACK else '127.0.0.1'}:{ports['argilla']}"
        info = {"url": url, "host": host, "api_key": api_key, "owner": OWNER, "password": password, "ports": ports,
                "pids": {name: p.pid for name, p in procs.items()}, "state_dir": str(state)}
        if host not in LOOPBACK:
            info["shared_url"] = f"http://{gethostname() if host in ('0.0.0.0', '::') else host}:{ports['argilla']}"
        # Written before waiting, so that `stop` can end a server that never became ready; it holds the owner's key
        # and password, so it is the user's alone.
        _write_private(_state_file(state), info)
        _wait("argilla-server", lambda: _http_ok(f"{url}/api/v1/me", api_key), procs, logs, timeout)
        return info
    except BaseException:
        end_process_groups([p.pid for p in procs.values()])
        _state_file(state).unlink(missing_ok=True)
        raise


def redis_server() -> str | None:
    """The redis-server executable: on PATH, or where Debian puts it (outside a non-root PATH)."""
    debian = (Path("/usr/bin/redis-server"), Path("/usr/sbin/redis-server"))
    return which("redis-server") or next((str(p) for p in debian if p.is_file()), None)


def stop(state_dir: str | Path = DEFAULT_STATE) -> bool:
    """Stop the server, osmem and Redis started from this state folder. False if none was running."""
    state = Path(state_dir).resolve()
    info = read_state(state)
    if not info:
        return False
    # Server first, so it does not log connection errors from a vanished Redis or search engine.
    order = [info["pids"][n] for n in ("worker", "argilla", "osmem", "redis") if n in info["pids"]]
    end_process_groups(order)
    _state_file(state).unlink(missing_ok=True)
    return True


def status(state_dir: str | Path = DEFAULT_STATE) -> dict:
    info = read_state(state_dir)
    if not info:
        return {"running": False, "state_dir": str(Path(state_dir).resolve())}
    shared = {"shared_url": info["shared_url"]} if "shared_url" in info else {}
    return {"running": _http_ok(f"{info['url']}/api/v1/me", info["api_key"]), "url": info["url"],
            "host": info.get("host", "127.0.0.1"), **shared, "owner": info["owner"], "pids": info["pids"],
            "state_dir": info["state_dir"]}


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
        raise ServerError(f"no server recorded in {Path(state_dir).resolve()}: start one with "
                          "`psychosafe serve argilla start`")
    user = _api(info, "POST", "/api/v1/users", {"first_name": username, "username": username, "password": password,
                                                 "role": role})
    workspaces = {w["name"]: w["id"] for w in _api(info, "GET", "/api/v1/me/workspaces")["items"]}
    if workspace not in workspaces:
        workspaces[workspace] = _api(info, "POST", "/api/v1/workspaces", {"name": workspace})["id"]
    _api(info, "POST", f"/api/v1/workspaces/{workspaces[workspace]}/users", {"user_id": user["id"]})
    return {"username": user["username"], "role": user["role"], "workspace": workspace}
