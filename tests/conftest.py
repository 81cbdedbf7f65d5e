import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TEST_CACHE = REPO / ".cache" / "tests"

# Tests never reach the network: no hub look-ups from datasets, transformers or huggingface_hub, whatever the
# caller's environment says (set, not setdefault).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("DISTILABEL_LOG_LEVEL", "WARNING")
# Caches in the checkout (gitignored), not the user's home: the embedded model is converted once there, and
# nothing a test writes lingers in ~/.cache. Child processes (the CLI, distilabel's workers) inherit these.
# pip's download cache stays the user's (test_wheel installs the stack from it, as `make setup` did).
os.environ.setdefault("PIP_CACHE_DIR", str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pip"))
os.environ["PSYCHOSAFE_CACHE_DIR"] = str(TEST_CACHE / "psychosafe")
os.environ["HF_HOME"] = str(TEST_CACHE / "huggingface")
os.environ["XDG_CACHE_HOME"] = str(TEST_CACHE)
os.environ["DISTILABEL_CACHE_DIR"] = str(TEST_CACHE / "distilabel")
# The local servers' virtualenvs are the checkout's (`make vllm-venv argilla-server`), wherever pytest runs from.
os.environ.setdefault("ARGILLA_SERVER_VENV", str(REPO / ".venv-argilla"))
os.environ.setdefault("VLLM_VENV", str(REPO / ".venv-vllm"))

import psychosafe  # noqa: E402,F401  (sets the spawn start method before distilabel is imported)
from psychosafe.app.serve import ServerError  # noqa: E402

# `make test` (CI) sets it: a missing service is then a failure, not a skip that hides untested code.
REQUIRE_SERVICES = "PSYCHOSAFE_REQUIRE_SERVICES"
# pyproject's `timeout` is for ordinary tests; a slow one loads a real model or starts a server (vLLM alone may take
# ten minutes on a loaded 2-core machine), so the `slow` marker gives it this many seconds unless it sets its own.
SLOW_TIMEOUT = 1800


def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT))


@pytest.fixture(scope="session")
def require_service():
    """require_service(what, find) -> find()'s result; `find` raises ServerError (or returns None) when the
    service is not installed. Skips the test then, or fails it when PSYCHOSAFE_REQUIRE_SERVICES is set."""

    def _require(what: str, find):
        try:
            found = find()
            problem = None if found else f"{what} is not installed"
        except ServerError as exc:
            found, problem = None, f"{what}: {exc}"
        if problem:
            if os.environ.get(REQUIRE_SERVICES):
                pytest.fail(f"{problem} ({REQUIRE_SERVICES} is set: `make test` installs every service)")
            pytest.skip(problem)
        return found

    return _require


@pytest.fixture
def write(tmp_path):
    """write('name', text or bytes) -> path of a file in a temp folder."""

    def _write(name: str, content: str | bytes):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return _write
