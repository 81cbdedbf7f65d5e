"""Embeddings of prompts and responses, cached in the run folder so a re-run computes only new texts.

The cache is one file per embedder: text hashes and unit-length float32 vectors, rewritten atomically.
A re-run whose texts are all cached does not even load the model.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from psychosafe.core.backends import build_embedder, embedder_id
from psychosafe.core.config import EmbedderConfig
from psychosafe.core.progress import progress_bar

EMBEDDINGS_DIR = "embeddings"  # the cache's folder in a run folder
ENCODE_CHUNK = 1024  # texts per encode() call: big enough to keep the model busy, small enough for a live progress bar
POOL_MIN_TEXTS = 4096  # fewer texts than this are encoded in this process even when `processes` asks for a pool


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


def encode(model, texts: list[str], batch_size: int, *, progress: bool = False, label: str = "embedding",
           pool: dict | None = None) -> np.ndarray:
    """Unit-length float32 vectors, in chunks so the progress bar moves (`pool`: encoding_pool's processes)."""
    out = []
    chunk_size = ENCODE_CHUNK * (len(pool["processes"]) if pool else 1)  # every process gets a share of each chunk
    with progress_bar(label, len(texts), show=progress, transient=True) as bar:
        for start in range(0, len(texts), chunk_size):
            chunk = texts[start:start + chunk_size]
            out.append(model.encode(chunk, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                                    show_progress_bar=False, pool=pool).astype(np.float32, copy=False))
            bar.advance(len(chunk))
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


@contextmanager
def encoding_pool(model, config: EmbedderConfig, texts: int):
    """sentence-transformers' multi-process pool of `config.processes` workers on `config.device`, each with its
    share of the CPU cores (OMP_NUM_THREADS as the workers start); None when one process is configured or the texts
    are too few to pay for starting the workers (each loads the stack: seconds)."""
    if config.processes <= 1 or texts < POOL_MIN_TEXTS:
        yield None
        return
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // config.processes))
    try:
        pool = model.start_multi_process_pool([config.device] * config.processes)
    finally:
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved
    try:
        yield pool
    finally:
        model.stop_multi_process_pool(pool)


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
            with encoding_pool(self.model, self.config, len(missing)) as pool:
                vectors = encode(self.model, list(missing.values()), self.config.batch_size, progress=progress,
                                 label=label, pool=pool)
            known.update(zip(missing, vectors))
            if self.cache:
                self.cache.save()
        dim = next(iter(known.values())).shape[0] if known else 0
        matrix = np.stack([known[k] for k in keys]) if keys else np.zeros((0, dim), dtype=np.float32)
        return matrix, EmbeddingStats(texts=len(texts), computed=len(missing), cached=len(set(keys)) - len(missing),
                                      seconds=time.perf_counter() - started)
