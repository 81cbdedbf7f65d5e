"""The eval record: the corpus Record plus what an eval needs to group and trace a row.

Benchmark prompts (XSTest, SORRY-Bench, a user's JSONL) often belong to none of the taxonomy's domains,
so `domain` may be empty here; every other field, and every function that takes a Record (the judge, the
rule-based checks), is the corpus's own. The `datasets.Features` are derived from the model, as for Record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import datasets
from pydantic import SerializeAsAny, field_validator

from psychosafe.errors import InputError
from psychosafe.schemas import Record, Rejected, dataset_to_records, default_taxonomy, features_of, records_to_dataset

ComplianceClass = Literal["full_compliance", "full_refusal", "partial_refusal"]
# Benchmarks whose question is "did the model comply?" rather than "how good is the refusal?"
COMPLIANCE_BENCHMARKS = ("xstest", "sorry-bench")


class EvalRecord(Record):
    domain: str | None = None  # type: ignore[assignment]
    benchmark: str = "prompts"
    group: str = ""  # what results are broken down by: XSTest type, SORRY-Bench category, or the domain
    style: str | None = None  # SORRY-Bench prompt_style ("base", or a mutation such as "slang")
    variant: str | None = None  # system prompt variant used to generate the response
    adapter: str | None = None  # LoRA adapter folder the response was generated with
    string_match: str | None = None  # XSTest-style class by refusal-marker matching (ComplianceClass)

    @field_validator("domain")
    @classmethod
    def _known_domain(cls, value: str | None) -> str | None:
        known = default_taxonomy().domain_ids()
        if value is not None and value not in known:
            raise ValueError(f"unknown domain '{value}'; expected one of {known} or none")
        return value


EVAL_FEATURES = features_of(EvalRecord)


class EvalRejected(Rejected):
    """A prompt set aside by an eval step: the record is an EvalRecord."""

    record: SerializeAsAny[EvalRecord] | None = None


def eval_dataset(records: list[EvalRecord]) -> datasets.Dataset:
    return records_to_dataset(records, EVAL_FEATURES)


def save_eval(records: list[EvalRecord], folder: Path) -> Path:
    """save_to_disk (one shard) and a parquet copy beside it."""
    ds = eval_dataset(records)
    ds.save_to_disk(str(folder), num_shards=1)
    ds.to_parquet(str(folder.with_suffix(".parquet")))
    return folder


def load_eval(folder: Path) -> list[EvalRecord]:
    if not (folder / "dataset_info.json").is_file():
        raise InputError(folder, "no eval dataset here (expected a folder written by `psychosafe eval generate`)")
    return dataset_to_records(datasets.load_from_disk(str(folder)), EvalRecord)
