"""A local Argilla server a small team can share: listening beyond 127.0.0.1, the owner's key and password are
generated, kept readable by the user alone, never printed or logged, and the published defaults are refused."""

import json
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from psychosafe.app.serve import ServerError
from psychosafe.app.serve import argilla as server_script

REPO = Path(__file__).resolve().parent.parent


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_loopback_keeps_the_published_defaults(tmp_path):
    assert server_script.owner_credentials(tmp_path, "127.0.0.1", None, None) == (
        server_script.DEFAULT_API_KEY, server_script.DEFAULT_PASSWORD)
    assert not (tmp_path / "owner.json").exists()


def test_listening_elsewhere_refuses_the_defaults_and_generates_private_credentials(tmp_path):
    for key, password, which in ((server_script.DEFAULT_API_KEY, None, "API key"),
                                 (None, server_script.DEFAULT_PASSWORD, "password")):
        with pytest.raises(ServerError, match=f"published default {which}"):
            server_script.owner_credentials(tmp_path, "0.0.0.0", key, password)
    assert not (tmp_path / "owner.json").exists()

    key, password = server_script.owner_credentials(tmp_path, "0.0.0.0", None, None)
    assert key != server_script.DEFAULT_API_KEY and len(key) >= 32 and len(password) >= 16
    assert _mode(tmp_path / "owner.json") == 0o600
    # the next start of the shared server keeps them (annotators' notes of the URL stay valid, the owner's key too)
    assert server_script.owner_credentials(tmp_path, "0.0.0.0", None, None) == (key, password)
    # the caller's own are taken and kept
    assert server_script.owner_credentials(tmp_path, "192.0.2.7", "team-key-0123456789", "team-password") == (
        "team-key-0123456789", "team-password")
    assert json.loads((tmp_path / "owner.json").read_text())["api_key"] == "team-key-0123456789"
    (tmp_path / "other").mkdir()
    with pytest.raises(ServerError, match="8 characters"):
        server_script.owner_credentials(tmp_path / "other", "0.0.0.0", None, "short")


def _listening(port: int) -> list[str]:
    """The local addresses a TCP socket on `port` listens on (from /proc/net/tcp, IPv4)."""
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:
            found.append(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def _login(url: str, username: str, password: str) -> int:
    data = urllib.parse.urlencode({"username": username, "password": password}).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(f"{url}/api/v1/token", data=data), timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _me(url: str, api_key: str) -> int:
    request = urllib.request.Request(f"{url}/api/v1/me", headers={"X-Argilla-Api-Key": api_key})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.slow
def test_a_shared_server_keeps_its_owner_credentials_private(tmp_path, require_service):
    require_service("the Argilla server", server_script.server_venv)
    state = tmp_path / "shared"
    # first on 127.0.0.1 with the published owner, as one person would start; then shared from the same database:
    # the owner's published key and password must stop working
    server_script.start(state, port=0)
    server_script.stop(state)
    env = os.environ | {"COLUMNS": "200"}
    started = subprocess.run([sys.executable, "-m", "psychosafe.cli", "serve", "argilla", "start", "--state-dir",
                              str(state), "--port", "0", "--host", "0.0.0.0"],
                             capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        info = server_script.read_state(state)
        owner = json.loads((state / "owner.json").read_text())
        secrets = (info["api_key"], info["password"])
        assert (owner["api_key"], owner["password"]) == secrets
        assert server_script.DEFAULT_API_KEY not in secrets and server_script.DEFAULT_PASSWORD not in secrets
        assert _mode(state) == 0o700 and _mode(state / "server.json") == 0o600 and _mode(state / "owner.json") == 0o600
        assert _listening(info["ports"]["argilla"]) == ["0.0.0.0"]
        assert _listening(info["ports"]["redis"]) == ["127.0.0.1"] and _listening(info["ports"]["osmem"]) == [
            "127.0.0.1"]
        assert "shared_url" in info and "for annotators" in started.stdout
        # the generated owner logs in; the published defaults do not
        assert _login(info["url"], "argilla", info["password"]) == 201  # a token created
        assert _login(info["url"], "argilla", server_script.DEFAULT_PASSWORD) == 401
        assert _me(info["url"], info["api_key"]) == 200 and _me(info["url"], server_script.DEFAULT_API_KEY) == 401
        assert server_script.status(state)["running"] is True
        # never printed, never logged: the CLI's output, `status`, and every log in the state folder
        status = subprocess.run([sys.executable, "-m", "psychosafe.cli", "serve", "argilla", "status",
                                 "--state-dir", str(state)], capture_output=True, text=True, env=env, cwd=REPO,
                                timeout=120)
        printed = started.stdout + started.stderr + status.stdout + status.stderr
        logs = "".join(p.read_text(errors="replace") for p in state.glob("*.log"))
        for secret in secrets:
            assert secret not in printed and secret not in logs
    finally:
        server_script.stop(state)
