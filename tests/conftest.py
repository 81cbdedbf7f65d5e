import os

import pytest

# Tests never reach the network: no hub look-ups from datasets, transformers or huggingface_hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DISTILABEL_LOG_LEVEL", "WARNING")

import psychosafe  # noqa: E402,F401  (sets the spawn start method before distilabel is imported)


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
