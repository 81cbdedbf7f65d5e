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

    def load(self) -> None:
        super().load()
        # The SDK's default transport (httpx) cost 2.8 ms of CPU a request here, its aiohttp transport 1.7 ms: at
        # paper scale (some 50 000 requests) that is most of psychosafe's own cost (benchmarks/bench_overhead.py).
        try:
            from openai import DefaultAioHttpClient

            http_client = DefaultAioHttpClient()
        except (ImportError, RuntimeError):  # an older openai, or aiohttp missing: keep the default transport
            return
        self._aclient = self._aclient.copy(http_client=http_client)

    def unload(self) -> None:
        if self._aclient is not None and self._event_loop is not None and not self._event_loop.is_closed():
            self._event_loop.run_until_complete(self._aclient.close())  # else aiohttp warns of unclosed sockets
        super().unload()

    # Not `agenerate`: distilabel reads the generation settings a step takes from that method's signature.
    async def _generate_chat_completion(self, input, **kwargs):  # type: ignore[override]
        (chat,), (shape,) = split_structured([input])
        if shape and self.constrains_per_row:
            kwargs["extra_body"] = (kwargs.get("extra_body") or {}) | request_fields(shape)
        return await super()._generate_chat_completion(input=chat, **kwargs)
