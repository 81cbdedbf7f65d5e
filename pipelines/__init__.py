"""Pipelines: seed import, distilabel tasks and the pipeline builders that run them."""

from .critique import CritiqueResult, critique_and_revise
from .judge import JudgeResult, RubricJudge, aggregate_panel, judge_records
from .persist import read_batches, run_persisted
from .responses import GenerationResult, generate_responses
from .retries import AttemptsResult, run_with_retries
from .seeds import SEED_FIELDS, SeedImport, import_seeds
from .synthesis import SynthesisPlan, SynthesisResult, count_cells, plan_requests, synthesize_prompts
from .tasks import GenericRefusal, PsychoSafeResponse, ReviseResponse, SelfCritique, SynthesizePrompt
from .templates import TEMPLATE_VERSION

__all__ = ["CritiqueResult", "critique_and_revise", "AttemptsResult", "run_with_retries", "SynthesisPlan",
           "SynthesisResult", "count_cells", "plan_requests", "synthesize_prompts", "GenericRefusal", "ReviseResponse",
           "SelfCritique", "SynthesizePrompt",
           "GenerationResult", "generate_responses", "read_batches", "run_persisted", "SEED_FIELDS", "SeedImport",
           "import_seeds",
           "PsychoSafeResponse", "TEMPLATE_VERSION",
           "JudgeResult", "RubricJudge", "aggregate_panel", "judge_records"]
