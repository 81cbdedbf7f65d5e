"""distilabel's TransformersLLM, batched.

distilabel 1.5.3 hands a whole input batch to the transformers pipeline without `batch_size`, so the
pipeline generates one prompt at a time (18 tok/s for SmolLM2 on 2 cores, against about 98 tok/s at
batch 8). This subclass passes the batch through, pads on the left as decoder-only models need, and
seeds each call so that sampling is repeatable for the same batches.
"""

from __future__ import annotations

from typing import Optional

from distilabel.models import TransformersLLM
from distilabel.models.llms.utils import compute_tokens, prepare_output


class BatchedTransformersLLM(TransformersLLM):
    seed: Optional[int] = None

    def load(self) -> None:
        super().load()
        self._pipeline.tokenizer.padding_side = "left"

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
        prompts = [self.prepare_input(input=i) for i in inputs]
        sampling = {"temperature": temperature, "top_p": top_p, "top_k": top_k} if do_sample and temperature > 0 else {}
        outputs = self._pipeline(
            prompts,
            batch_size=len(prompts),
            max_new_tokens=max_new_tokens,
            repetition_penalty=repetition_penalty,
            do_sample=do_sample and temperature > 0,
            num_return_sequences=num_generations,
            pad_token_id=self._pipeline.tokenizer.eos_token_id,
            **sampling,
        )
        encode = self._pipeline.tokenizer.encode
        return [
            prepare_output(
                [g["generated_text"] for g in out],
                input_tokens=[compute_tokens(inp, encode)],
                output_tokens=[compute_tokens(g["generated_text"], encode) for g in out],
            )
            for inp, out in zip(inputs, outputs)
        ]
