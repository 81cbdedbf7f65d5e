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
    ("generator: {backend: llamafile}\n", "generator.backend: Input should be 'embedded', 'transformers', 'openai' or 'vllm'"),
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
