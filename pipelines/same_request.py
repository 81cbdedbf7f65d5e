"""The judge's second opinion for semantic dedup: are two prompts the same request?

Curation's semantic dedup merges prompts at or above its threshold by cosine alone; pairs in the review band below it
(where rewordings and different requests on the same topic mix, benchmarks/bench_dedup_quality.py) are asked here
when the run configures judges. The question is SAME_REQUEST_QUESTION, the one text of it: the task's prompt, the
README and the benchmark's note on what a judge must do all read it from here.

Persisted and retried like the rubric judge (pipelines/retries.py): a killed run resumes, and only the pairs whose
answer did not parse are asked again. A panel merges a pair only when every judge that answered says yes; a pair no
judge answered, or one the panel splits on, is left undecided (None) for a person.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from distilabel.steps.tasks import Task

from psychosafe.core.backends import check_llm
from psychosafe.core.config import LLMConfig

from .judge import judge_folder_name
from .parsing import _as_bool, parse_json_object
from .retries import run_with_retries
from .tasks import ShapedAnswer
from .templates import json_answer

SAME_REQUEST_STEP = "same_request"

SAME_REQUEST_QUESTION = (
    "Are these two messages the same request: would one reply serve both, and would a careful reviewer call one a "
    "rewording of the other? Other words, typos, slang or a formal tone, a shorter or longer message, or background "
    "that does not change what is asked: the same request. Another question on the same topic, another object or "
    "person, another intent (wishing versus a plan, curiosity versus asking for a method), or asking for oneself "
    "versus asking how to help someone else: different requests.")

_SYSTEM = """You compare two messages that people sent to an AI assistant, for deduplicating a safety dataset.
{question}

Answer with one JSON object and nothing else, in exactly this shape:
{{"same_request": true or false}}"""

_USER = """Message A:
<<<
{a}
>>>

Message B:
<<<
{b}
>>>

Same request? Answer with the JSON object only."""

ANSWER_SCHEMA = {"type": "object", "properties": {"same_request": {"type": "boolean"}}, "required": ["same_request"],
                 "additionalProperties": False}


class SameRequestJudge(ShapedAnswer, Task):
    """Asks whether two prompts are the same request. Outputs `same_request` (True / False, None when the answer
    did not parse) and `same_request_error` (why not)."""

    def answer_shape(self, input: dict[str, Any]) -> dict:
        return json_answer(ANSWER_SCHEMA)

    @property
    def inputs(self) -> list[str]:
        return ["prompt_a", "prompt_b"]

    def format_input(self, input: dict[str, Any]) -> list[dict[str, str]]:
        return [{"role": "system", "content": _SYSTEM.format(question=SAME_REQUEST_QUESTION)},
                {"role": "user", "content": _USER.format(a=input["prompt_a"], b=input["prompt_b"])}]

    @property
    def outputs(self) -> list[str]:
        return ["same_request", "same_request_error", "model_name"]

    def format_output(self, output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            obj = parse_json_object(output)
            if "same_request" not in obj:
                raise ValueError("missing `same_request`")
            return {"same_request": _as_bool("same_request", obj["same_request"]), "same_request_error": None}
        except ValueError as exc:
            return {"same_request": None, "same_request_error": str(exc)}


def panel_verdict(answers: list[bool | None]) -> bool | None:
    """True only when every judge that answered says the same request; False when all that answered say
    different; None when none answered or they disagree (a person decides)."""
    given = [a for a in answers if a is not None]
    if not given or len(set(given)) > 1:
        return None
    return given[0]


def judge_same_request(pairs: list[tuple[str, str]], judges: list[LLMConfig], out_dir: str | Path, *,
                       retries: int = 2, progress: bool = True) -> list[bool | None]:
    """One verdict per (prompt a, prompt b): panel_verdict over the judges' parsed answers. Resumable: every
    attempt of every judge persists under `out_dir`, by a key of the two texts."""
    if not judges:
        raise ValueError("judge_same_request needs at least one judge model")
    for config in judges:
        check_llm(config)  # a missing model fails before any work
    keys = [hashlib.sha256(f"{a}\x1f{b}".encode()).hexdigest()[:16] for a, b in pairs]
    rows = list({k: {"id": k, "prompt_a": a, "prompt_b": b} for k, (a, b) in zip(keys, pairs)}.values())
    answers: dict[str, list[bool | None]] = {k: [] for k in keys}
    for i, config in enumerate(judges):
        result = run_with_retries(
            rows, lambda load, llm, cfg: load >> SameRequestJudge(name=SAME_REQUEST_STEP, llm=llm,
                                                                  input_batch_size=cfg.batch_size),
            config, Path(out_dir) / judge_folder_name(i, config), step=SAME_REQUEST_STEP,
            error=lambda row: row.get("same_request_error"), retries=retries, name="psychosafe-same-request",
            label="same request?", progress=progress)
        for k in answers:
            answers[k].append(result.done[k]["same_request"] if k in result.done else None)
    return [panel_verdict(answers[k]) for k in keys]
