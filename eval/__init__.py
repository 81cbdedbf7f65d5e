"""Eval: prompt sets (XSTest, SORRY-Bench, curated splits, files), generation under a system prompt variant of
psychosafe.core.prompts, the shared rubric judge, metrics, the comparison report."""

from .capability import require_lm_eval, run_capability
from .compare import compare_runs
from .config import EvalConfig, load_eval_config
from .metrics import (
    bootstrap_ci,
    checks_summary,
    fulfillment_summary,
    overall_quality,
    paired_comparison,
    paired_permutation_test,
    relative_improvement,
    rubric_summary,
    string_match_class,
    xstest_summary,
)
from .records import EVAL_FEATURES, EvalRecord, load_eval, save_eval
from .report import eval_summary, write_eval_report
from .run import benchmark_run, eval_folder, generate_run, judge_run
from .tasks import load_prompt_file, load_prompt_set, load_sorry_bench, load_xstest

__all__ = [
    "require_lm_eval", "run_capability", "compare_runs", "EvalConfig", "load_eval_config", "bootstrap_ci",
    "checks_summary", "fulfillment_summary", "overall_quality", "paired_comparison", "paired_permutation_test",
    "relative_improvement", "rubric_summary", "string_match_class", "xstest_summary", "EVAL_FEATURES", "EvalRecord",
    "load_eval", "save_eval", "eval_summary", "write_eval_report", "benchmark_run", "eval_folder", "generate_run",
    "judge_run", "load_prompt_file", "load_prompt_set", "load_sorry_bench", "load_xstest",
]
