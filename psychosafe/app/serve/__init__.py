"""The local servers the stages use, each run from a virtualenv of its own: Argilla (review) and vLLM on the CPU
(generation through the `openai` backend). `psychosafe serve argilla | vllm` drives them."""

from psychosafe.app.serve.process import ServerError

__all__ = ["ServerError"]
