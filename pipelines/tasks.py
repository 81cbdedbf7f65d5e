"""distilabel tasks. Each owns its prompt (`format_input`) and its parsing (`format_output`)."""

from __future__ import annotations

from typing import Any

from distilabel.steps.tasks import Task

from psychosafe.schemas import Record

from .templates import response_system_prompt


class PsychoSafeResponse(Task):
    """The response to one prompt: a PsychoSafe refusal for harmful prompts, a helpful answer for benign
    ones. Input rows are records (as dicts) with their strategy already chosen."""

    @property
    def inputs(self) -> list[str]:
        return ["id", "prompt", "label", "domain", "strategy", "locale"]

    def format_input(self, input: dict[str, Any]) -> list[dict[str, str]]:
        record = Record.model_validate({k: input.get(k) for k in Record.model_fields if k in input})
        return [
            {"role": "system", "content": response_system_prompt(record)},
            {"role": "user", "content": record.prompt},
        ]

    @property
    def outputs(self) -> list[str]:
        return ["response", "model_name"]

    def format_output(self, output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
        text = (output or "").strip()
        return {"response": text or None}
