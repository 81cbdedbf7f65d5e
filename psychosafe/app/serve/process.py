"""What both local servers need: their virtualenv, free ports, and ending a process group for good."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

from psychosafe.core.backends.embedded import cache_root
from psychosafe.errors import PsychosafeError


class ServerError(PsychosafeError):
    """A local server could not be set up, started or reached; the message says what to do."""


def find_venv(env_var: str, folder: str, create: str, make_target: str) -> Path:
    """A server's virtualenv: `$env_var`, else `folder` in the current directory, else `folder` under the user
    cache dir. `create` is the shell command that makes one at `{venv}`; a checkout's Makefile has `make_target`."""
    candidates = [Path(os.environ[env_var])] if os.environ.get(env_var) else [Path(folder), cache_root() / folder]
    for venv in candidates:
        if (venv / "bin" / "python").is_file():
            return venv.absolute()
    where = " or ".join(str(p.absolute()) for p in candidates)
    if os.environ.get(env_var):
        hint = f"create it with `{create.format(venv=candidates[0])}`, or unset {env_var}"
    else:
        hint = (f"create one in the current folder with `{create.format(venv=folder)}` (in a checkout: `make "
                f"{make_target}`), or set {env_var} to one")
    raise ServerError(f"no server virtualenv at {where}: {hint}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie, one of our children that exited, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def group_members(pgid: int) -> list[int]:
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


def _signal_groups(pgids: list[int], sig: int, deadline: float) -> None:
    for pgid in pgids:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    while time.monotonic() < deadline and any(group_members(p) for p in pgids):
        for pgid in pgids:  # reap our own children so they do not linger as zombies
            _reap(pgid)
        time.sleep(0.2)


def end_process_groups(pgids: list[int], grace: float = 10.0) -> None:
    """SIGTERM each group in order, SIGKILL whatever is left after `grace` s, and return once none of their
    processes runs, so that a caller may rely on the memory and the ports being free. A server's workers may
    outlive its main process, hence groups rather than pids."""
    _signal_groups(pgids, signal.SIGTERM, time.monotonic() + grace)
    if any(group_members(p) for p in pgids):
        _signal_groups(pgids, signal.SIGKILL, time.monotonic() + 10)
    for pgid in pgids:
        _reap(pgid)


def log_tail(path: Path, lines: int = 30) -> str:
    if not path.is_file():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
