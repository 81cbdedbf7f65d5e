"""Embeddings of prompts and responses, cached in the run folder so a re-run computes only new texts.

The cache is one file per embedder: text hashes and unit-length float32 vectors, rewritten atomically.
A re-run whose texts are all cached does not even load the model.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from psychosafe.core.backends import build_embedder, embedder_id
from psychosafe.core.config import EmbedderConfig
from psychosafe.core.progress import progress_bar

EMBEDDINGS_DIR = "embeddings"  # the cache's folder in a run folder
ENCODE_CHUNK = 1024  # texts per encode() call: big enough to keep the model busy, small enough for a live progress bar


def text_key(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8")).hexdigest().encode()


@dataclass
class EmbeddingStats:
    texts: int
    computed: int
    cached: int
    seconds: float


class EmbeddingCache:
    def __init__(self, folder: Path, embedder: str):
        self.path = Path(folder) / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', embedder)}.npz"
        self.vectors: dict[bytes, np.ndarray] = {}
        if self.path.is_file():
            with np.load(self.path) as data:
                self.vectors = dict(zip(data["keys"].tolist(), data["vectors"]))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.stem}.tmp{os.getpid()}.npz")
        keys = list(self.vectors)
        np.savez(tmp, keys=np.array(keys, dtype="S40"), vectors=np.stack([self.vectors[k] for k in keys]))
        os.replace(tmp, self.path)


def encode(model, texts: list[str], batch_size: int, *, progress: bool = False, label: str = "embedding") -> np.ndarray:
    """Unit-length float32 vectors, in chunks so the progress bar moves."""
    out = []
    with progress_bar(label, len(texts), show=progress, transient=True) as bar:
        for start in range(0, len(texts), ENCODE_CHUNK):
            chunk = texts[start:start + ENCODE_CHUNK]
            out.append(model.encode(chunk, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                                    show_progress_bar=False).astype(np.float32, copy=False))
            bar.advance(len(chunk))
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


class CachedEmbedder:
    """The configured embedder behind the run folder's cache; the model loads on the first uncached text."""

    def __init__(self, config: EmbedderConfig, cache_folder: Path | None = None, *, model=None):
        self.config = config
        self.cache = EmbeddingCache(cache_folder, embedder_id(config)) if cache_folder else None
        self._model = model

    @property
    def model(self):
        if self._model is None:
            self._model = build_embedder(self.config)
        return self._model

    def embed(self, texts: list[str], *, progress: bool = False,
              label: str = "embedding") -> tuple[np.ndarray, EmbeddingStats]:
        """One vector per text; identical texts are encoded once, cached ones not at all."""
        started = time.perf_counter()
        known = self.cache.vectors if self.cache else {}
        keys = [text_key(t) for t in texts]
        missing: dict[bytes, str] = {}
        for k, t in zip(keys, texts):
            if k not in known and k not in missing:
                missing[k] = t
        if missing:
            vectors = encode(self.model, list(missing.values()), self.config.batch_size, progress=progress, label=label)
            known.update(zip(missing, vectors))
            if self.cache:
                self.cache.save()
        dim = next(iter(known.values())).shape[0] if known else 0
        matrix = np.stack([known[k] for k in keys]) if keys else np.zeros((0, dim), dtype=np.float32)
        return matrix, EmbeddingStats(texts=len(texts), computed=len(missing), cached=len(set(keys)) - len(missing),
                                      seconds=time.perf_counter() - started)
