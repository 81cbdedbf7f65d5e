"""Eval: prompt sets (XSTest, SORRY-Bench, curated splits, files), generation under a system prompt variant of
psychosafe.core.prompts, the shared rubric judge, metrics, the comparison report in the paper's shape, someone
else's verdicts and ratings imported (eval.table_import), the judge-human agreement table, and conversations answered
turn by turn and scored per pattern and turn (eval.conversations)."""

from .capability import require_lm_eval, run_capability
from .compare import compare_runs
from .config import EvalConfig, load_eval_config
from .conversations import as_single_turn, pattern_summary, turn_passes
from .judge_agreement import agreement_table, criterion_agreement
from .metrics import (
    bootstrap_ci,
    check_response,
    checks_summary,
    fulfillment_summary,
    overall_quality,
    paired_comparison,
    paired_permutation_test,
    permutation_test,
    relative_improvement,
    rubric_summary,
    string_match_class,
    unpaired_comparison,
    xstest_summary,
)
from .ratings import read_rating, read_scores
from .records import EVAL_FEATURES, EvalRecord, EvalScores, load_eval, save_eval
from .report import eval_summary, judged_records, write_eval_report
from .run import benchmark_run, eval_folder, generate_run, judge_run
from .table_import import import_table, read_table
from .tasks import load_prompt_file, load_prompt_set, load_sorry_bench, load_xstest

__all__ = [
    "require_lm_eval", "run_capability", "compare_runs", "EvalConfig", "load_eval_config", "agreement_table",
    "criterion_agreement", "bootstrap_ci", "check_response", "checks_summary", "fulfillment_summary",
    "overall_quality", "paired_comparison", "paired_permutation_test", "permutation_test", "relative_improvement",
    "rubric_summary", "string_match_class", "unpaired_comparison", "xstest_summary", "read_rating", "read_scores",
    "EVAL_FEATURES", "EvalRecord", "EvalScores", "load_eval", "save_eval", "eval_summary", "judged_records",
    "write_eval_report", "benchmark_run", "eval_folder", "generate_run", "judge_run", "import_table", "read_table",
    "load_prompt_file", "load_prompt_set", "load_sorry_bench", "load_xstest", "as_single_turn", "pattern_summary",
    "turn_passes",
]
