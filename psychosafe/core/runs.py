"""The run folder and its manifest: config, versions, models, seed, counts and seconds per stage (ARCHITECTURE.md)."""

from __future__ import annotations

import json
import platform
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from psychosafe.schemas import Rejected

from .io import read_jsonl, write_json_atomic, write_jsonl_atomic

DEFAULT_RUNS_DIR = Path("runs")
VERSIONED_PACKAGES = ("psychosafe", "distilabel", "datasets", "transformers", "torch", "sentence-transformers",
                      "argilla", "pydantic", "trl", "peft")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


class RunFolder:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def new(cls, runs_dir: str | Path, name: str) -> "RunFolder":
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        return cls(Path(runs_dir) / f"{name}-{stamp}")

    # -- layout --------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    def __getattr__(self, stage: str) -> Path:
        if stage in ("synthesized", "curated", "rejected", "report", "review", "publish", "train", "eval"):
            return self.path / stage
        raise AttributeError(stage)

    # -- manifest ------------------------------------------------------------------------------
    def manifest(self) -> dict:
        if self.manifest_path.is_file():
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        return {}

    def start(self, *, config: dict, models: dict[str, str], seed: int) -> None:
        manifest = self.manifest()
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        manifest.setdefault("run_id", self.path.name)
        manifest.setdefault("created", now)
        manifest.setdefault("stages", {})
        manifest.update(updated=now, command=" ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), config=config,
                        models=models, seed=seed, versions=package_versions())
        write_json_atomic(self.manifest_path, manifest)

    def record_stage(self, name: str, *, seconds: float, counts: dict) -> None:
        manifest = self.manifest()
        manifest.setdefault("stages", {})[name] = {"seconds": round(seconds, 3), "counts": counts,
                                                   "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        write_json_atomic(self.manifest_path, manifest)

    def update(self, **fields) -> None:
        manifest = self.manifest() | fields
        write_json_atomic(self.manifest_path, manifest)

    # -- rejected ------------------------------------------------------------------------------
    def write_rejected(self, stage: str, rejected: list[Rejected]) -> Path:
        """One JSONL file per stage, rewritten whole: rerunning a stage never duplicates its rejections."""
        return write_jsonl_atomic(self.rejected / f"{stage}.jsonl", rejected)

    def read_rejected(self, model: type[Rejected] = Rejected) -> list[Rejected]:
        """Every record set aside, stage by stage (`model`: a Rejected whose record is a richer record type)."""
        return [model.model_validate(row) for path in sorted(self.rejected.glob("*.jsonl")) for row in read_jsonl(path)]


class Timer:
    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start
