"""distilabel's OpenAILLM, with per-row structured outputs sent as the server's own constrained decoding.

distilabel 1.5.3 routes a (chat, structured output) pair through `instructor`, which wants a pydantic model and
re-asks on failure. An OpenAI-compatible server already constrains decoding itself: a JSON Schema goes as the
standard `response_format` (json_schema), a regular expression as vLLM's `structured_outputs` request field.
"""

from __future__ import annotations

from distilabel.models import OpenAILLM

from .batched_transformers import split_structured


def request_fields(shape: dict) -> dict:
    """The request-body fields that hold one answer to a structured output (sent as the client's `extra_body`:
    distilabel types `response_format` as a flat dict of strings, which a JSON Schema is not)."""
    if shape.get("format") == "json":
        return {"response_format": {"type": "json_schema",
                                    "json_schema": {"name": "answer", "schema": shape["schema"], "strict": True}}}
    if shape.get("format") == "regex":
        return {"structured_outputs": {"regex": shape["schema"]}}
    raise ValueError(f"structured output format must be 'json' or 'regex', got {shape.get('format')!r}")


class StructuredOpenAILLM(OpenAILLM):
    constrains_per_row: bool = False

    # Not `agenerate`: distilabel reads the generation settings a step takes from that method's signature.
    async def _generate_chat_completion(self, input, **kwargs):  # type: ignore[override]
        (chat,), (shape,) = split_structured([input])
        if shape and self.constrains_per_row:
            kwargs["extra_body"] = (kwargs.get("extra_body") or {}) | request_fields(shape)
        return await super()._generate_chat_completion(input=chat, **kwargs)
