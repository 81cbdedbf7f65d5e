"""Pipelines: seed import, distilabel tasks and the pipeline builders that run them."""

from .generate import GenerationResult, generate_responses, read_batches
from .judge import JudgeResult, RubricJudge, aggregate_panel, judge_records
from .seeds import SEED_FIELDS, SeedImport, import_seeds
from .tasks import PsychoSafeResponse
from .templates import TEMPLATE_VERSION, response_system_prompt

__all__ = ["GenerationResult", "generate_responses", "read_batches", "SEED_FIELDS", "SeedImport", "import_seeds",
           "PsychoSafeResponse", "TEMPLATE_VERSION", "response_system_prompt",
           "JudgeResult", "RubricJudge", "aggregate_panel", "judge_records"]
