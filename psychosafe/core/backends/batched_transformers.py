"""distilabel's TransformersLLM, batched, with per-row constrained decoding.

distilabel 1.5.3 hands a whole input batch to the transformers pipeline without `batch_size`, so the
pipeline generates one prompt at a time (18 tok/s for SmolLM2 on 2 cores, against about 98 tok/s at
batch 8). This subclass passes the batch through, pads on the left as decoder-only models need, and
seeds each call so that sampling is repeatable for the same batches.

A batch whose prompts differ much in length (a conversation's critique beside a single prompt's) is generated in
sub-batches of similar length (`length_groups`): every row is padded to the longest of its batch, and on a CPU the
prompt's tokens are most of the cost (SmolLM2 on 2 cores: about 520 prompt tokens/s, against 55 ms a decoding step
for a batch plus some 10 ms a row): with one 1,700-token conversation in a batch of fifteen 900-token prompts, the
default run's judge phase took 96 s instead of 55.

With `constrains_per_row`, an input may come as distilabel's (chat, structured output) pair, the structured
output being {"format": "json", "schema": JSON Schema} or {"format": "regex", "schema": pattern}; xgrammar
then masks every token that would leave that shape, row by row, so even a 135M model answers a rubric with
JSON that parses. distilabel's own route for this needs outlines < 1.0, which no longer installs with
transformers 5.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from distilabel.models import TransformersLLM
from distilabel.models.llms.utils import compute_tokens, prepare_output
from pydantic import PrivateAttr


def split_structured(inputs: list) -> tuple[list, list[Optional[dict]]]:
    """(chats, structured outputs) from inputs that are chats or (chat, structured output) pairs."""
    chats, shapes = [], []
    for item in inputs:
        chat, shape = item if isinstance(item, tuple) else (item, None)
        chats.append(chat)
        shapes.append(shape)
    return chats, shapes


# What a sub-batch of its own costs, in prompt tokens: one more decoding pass of up to a hundred steps at 55 ms a step
# (module docstring) is about as long as prefilling 2,000 more tokens of padding.
SUB_BATCH_COST_TOKENS = 2048


def length_groups(lengths: list[int], split_cost: int = SUB_BATCH_COST_TOKENS) -> list[list[int]]:
    """The rows' indices in sub-batches of similar length: in order of length, a row joins the sub-batch before it
    unless padding that sub-batch up to it would add more than `split_cost` tokens."""
    groups: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        if groups and (lengths[i] - lengths[groups[-1][-1]]) * len(groups[-1]) <= split_cost:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


class BatchedTransformersLLM(TransformersLLM):
    seed: Optional[int] = None
    sub_batch_cost_tokens: int = SUB_BATCH_COST_TOKENS  # length_groups' split_cost
    constrains_per_row: bool = False
    torch_threads: Optional[int] = None  # None: torch's default, every core (psychosafe.core.executors shares them out)
    _compiler: Any = PrivateAttr(default=None)
    _grammars: dict = PrivateAttr(default_factory=dict)

    def load(self) -> None:
        if self.torch_threads:
            import torch

            torch.set_num_threads(self.torch_threads)
        super().load()
        tokenizer = self._pipeline.tokenizer
        tokenizer.padding_side = "left"
        if self.constrains_per_row:
            import xgrammar

            info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=self._pipeline.model.config.vocab_size)
            self._compiler = xgrammar.GrammarCompiler(info)

    def _grammar(self, shape: dict):
        """The compiled grammar of a structured output (compiled once per shape: a task has one or two)."""
        key = json.dumps(shape, sort_keys=True)
        if key not in self._grammars:
            if shape.get("format") == "json":
                schema = shape["schema"] if isinstance(shape["schema"], str) else json.dumps(shape["schema"])
                # compact JSON: free whitespace lets a small model pad its answer with newlines until the token limit
                self._grammars[key] = self._compiler.compile_json_schema(schema, any_whitespace=False)
            elif shape.get("format") == "regex":
                self._grammars[key] = self._compiler.compile_regex(shape["schema"])
            else:
                raise ValueError(f"structured output format must be 'json' or 'regex', got {shape.get('format')!r}")
        return self._grammars[key]

    def _logits_processors(self, shapes: list[Optional[dict]], num_generations: int) -> list:
        if not self.constrains_per_row or not any(shapes):
            return []
        if not all(shapes):
            raise ValueError("a batch mixes rows with and without a structured output; a task gives all or none")
        import xgrammar

        # generate() repeats each prompt num_generations times, one after the other
        grammars = [self._grammar(shape) for shape in shapes for _ in range(num_generations)]
        return [xgrammar.contrib.hf.LogitsProcessor(grammars)]  # stateful: a fresh one per call

    def generate(  # type: ignore[override]
        self,
        inputs: list,
        num_generations: int = 1,
        max_new_tokens: int = 128,
        temperature: float = 0.1,
        repetition_penalty: float = 1.1,
        top_p: float = 1.0,
        top_k: int = 0,
        do_sample: bool = True,
    ) -> list:
        if self.seed is not None:
            from transformers import set_seed

            set_seed(self.seed)
        chats, shapes = split_structured(inputs)
        prompts = [self.prepare_input(input=chat) for chat in chats]
        encode = self._pipeline.tokenizer.encode
        lengths = [len(encode(prompt, add_special_tokens=False)) for prompt in prompts]
        sampling = {"temperature": temperature, "top_p": top_p, "top_k": top_k} if do_sample and temperature > 0 else {}
        outputs: list = [None] * len(prompts)
        for group in length_groups(lengths, self.sub_batch_cost_tokens):
            processors = self._logits_processors([shapes[i] for i in group], num_generations)
            generated = self._pipeline(
                [prompts[i] for i in group],
                batch_size=len(group),
                max_new_tokens=max_new_tokens,
                # A shaped answer repeats what the shape asks for (keys, quotes, true/false); penalising repeats then
                # makes the model spell them in ever smaller pieces until the token limit cuts the answer short.
                repetition_penalty=1.0 if processors else repetition_penalty,
                do_sample=do_sample and temperature > 0,
                num_return_sequences=num_generations,
                pad_token_id=self._pipeline.tokenizer.eos_token_id,
                **({"logits_processor": processors} if processors else {}),
                **sampling,
            )
            for i, out in zip(group, generated):
                outputs[i] = out
        return [
            prepare_output(
                [g["generated_text"] for g in out],
                input_tokens=[compute_tokens(chat, encode)],
                output_tokens=[compute_tokens(g["generated_text"], encode) for g in out],
            )
            for chat, out in zip(chats, outputs)
        ]
