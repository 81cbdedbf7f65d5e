"""Curated records -> chat conversations for TRL: whole conversations for SFT, chosen/rejected pairs for DPO.

An SFT row is the record's conversation under the system prompt variant, `{"messages": [system, user, assistant,
...]}` (a single prompt is one user and one assistant turn); train/tokens.py tokenizes it with the loss on the
assistant's turns only (`data.loss_on`: every one, or the last), for any chat template. A DPO row is the
conversation up to its last user turn as the prompt, the PsychoSafe answer to that turn chosen and the generic
baseline rejected. Records left out are counted with the reason; none vanishes silently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import datasets

from psychosafe.core.prompts import prompt_messages
from psychosafe.curation.usable import BLOCKS, blocking_reasons
from psychosafe.errors import InputError
from psychosafe.schemas import Record, default_taxonomy, row_to_record

from .config import DataSettings, PreferenceSettings

REQUIRED_COLUMNS = ("id", "prompt", "response", "label", "domain")
LEFT_OUT = {"checks_failed": "flagged by the rule-based checks (data.exclude_flagged)"}


@dataclass
class TrainingData:
    """What the trainer gets, and what was left out of it and why."""

    source: Path
    train: datasets.Dataset
    eval: datasets.Dataset | None
    set_aside: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> reason -> count
    with_reasoning: int = 0

    def counts(self) -> dict:
        return {"train_examples": len(self.train), "eval_examples": len(self.eval) if self.eval is not None else 0,
                "with_reasoning": self.with_reasoning, "set_aside": self.set_aside}


def load_curated(path: str | Path, settings: DataSettings) -> datasets.DatasetDict:
    """The saved DatasetDict, checked for a non-empty train split and the columns training needs."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no dataset here; run `psychosafe curate` first, or set data.dataset to a saved "
                               "DatasetDict folder")
    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as exc:
        raise InputError(path, f"not a dataset saved with save_to_disk ({exc})") from None
    if not isinstance(loaded, datasets.DatasetDict):
        raise InputError(path, f"a single split was found; expected a DatasetDict with a '{settings.train_split}' "
                               "split (curated/ holds train / validation / test)")
    if settings.train_split not in loaded:
        raise InputError(path, f"no '{settings.train_split}' split; the dataset has {sorted(loaded)}",
                         where="data.train_split")
    if len(loaded[settings.train_split]) == 0:
        raise InputError(path, f"the '{settings.train_split}' split is empty: nothing to train on")
    if settings.eval_split and settings.eval_split not in loaded:
        raise InputError(path, f"no '{settings.eval_split}' split; the dataset has {sorted(loaded)} "
                               "(set data.eval_split: null to train without one)", where="data.eval_split")
    missing = [c for c in REQUIRED_COLUMNS if c not in loaded[settings.train_split].column_names]
    if missing:
        raise InputError(path, f"columns {missing} are missing; expected the record fields of schemas/records.py",
                         where=settings.train_split)
    return loaded


def _record(row: dict, path: Path, split: str, index: int) -> Record:
    try:
        return row_to_record(row)
    except ValueError as exc:
        raise InputError(path, str(exc), where=f"{split}[{index}] (id {row.get('id')})") from None


def assistant_message(text: str, reasoning: str | None = None) -> list[dict]:
    content = f"<think>\n{reasoning.strip()}\n</think>\n\n{text}" if reasoning and reasoning.strip() else text
    return [{"role": "assistant", "content": content}]


def _why_left_out(record: Record, settings: DataSettings) -> str | None:
    # curation's one policy; a record whose checks never ran (a dataset curated elsewhere) is not held back
    codes = [c for c in blocking_reasons(record, require_checks=settings.exclude_flagged) if c != "checks_not_run"]
    if codes:
        return LEFT_OUT.get(codes[0], BLOCKS[codes[0]])
    if settings.system_prompt == "v1-routed" and record.label == "harmful" and record.strategy:
        try:
            default_taxonomy().strategy(record.strategy)
        except KeyError:
            return f"strategy '{record.strategy}' not in taxonomy.yaml (needed by the PsychoSafe system prompt)"
    return None


def _why_no_pair(record: Record, preference: PreferenceSettings) -> str | None:
    if record.label not in preference.labels:
        return f"label '{record.label}' not in dpo.labels"
    if not (record.baseline_response or "").strip():
        return "no baseline_response to reject"
    if record.baseline_response.strip() == record.response.strip():
        return "baseline_response identical to response"
    return None


def conversations(split: datasets.Dataset, settings: DataSettings, *, source: Path, split_name: str,
                  preference: PreferenceSettings | None = None) -> tuple[datasets.Dataset, Counter, int]:
    """One split as SFT conversation rows (or DPO prompt/chosen/rejected rows when `preference` is given)."""
    rows, left_out, with_reasoning = [], Counter(), 0
    has_reasoning = settings.include_reasoning and settings.reasoning_field in split.column_names
    for index, row in enumerate(split):
        record = _record(row, source, split_name, index)
        reason = _why_left_out(record, settings) or (_why_no_pair(record, preference) if preference else None)
        if reason:
            left_out[reason] += 1
            continue
        reasoning = row.get(settings.reasoning_field) if has_reasoning else None
        with_reasoning += bool(reasoning and reasoning.strip())
        prompt = prompt_messages(record, settings.system_prompt)  # a conversation's earlier turns included
        if preference:
            rows.append({"prompt": prompt, "chosen": assistant_message(record.response, reasoning),
                         "rejected": assistant_message(record.baseline_response)})
        else:
            rows.append({"messages": prompt + assistant_message(record.response, reasoning)})
        if settings.max_examples and split_name == settings.train_split and len(rows) >= settings.max_examples:
            break
    return datasets.Dataset.from_list(rows), left_out, with_reasoning


def training_data(path: str | Path, settings: DataSettings,
                  preference: PreferenceSettings | None = None) -> TrainingData:
    """Load the curated splits and turn them into conversations; fails if nothing is left to train on."""
    path = Path(path)
    loaded = load_curated(path, settings)
    train, left_out, with_reasoning = conversations(loaded[settings.train_split], settings, source=path,
                                                    split_name=settings.train_split, preference=preference)
    set_aside = {settings.train_split: dict(left_out)}
    if len(train) == 0:
        raise InputError(path, f"no usable record in '{settings.train_split}' ({dict(left_out)})")
    evaluation = None
    if settings.eval_split and len(loaded[settings.eval_split]):
        evaluation, eval_left_out, _ = conversations(loaded[settings.eval_split], settings, source=path,
                                                     split_name=settings.eval_split, preference=preference)
        set_aside[settings.eval_split] = dict(eval_left_out)
        evaluation = evaluation if len(evaluation) else None
    return TrainingData(source=path, train=train, eval=evaluation, set_aside=set_aside, with_reasoning=with_reasoning)
