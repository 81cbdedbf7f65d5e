"""Curation: a list of steps run by one loop, each returning what it kept, what it set aside and why.

The default order (`curation.steps` in the run config): exact dedup -> embed -> semantic dedup -> template collapse
(responses) -> checks (refusal markers, contact details) -> scores (judge thresholds) -> balance; then the final
stage, split (no leakage), and the report. steps.py holds the Step base, its context and the loop; registry.py the
built-in steps. Review (`psychosafe.curation.review`) and publish (`psychosafe.curation.publish`) build on it, in
packages of their own.
"""

from .balance import balance_domains
from .checks import apply_checks, check_record
from .collapse import detect_template_collapse
from .curate import curate, curate_corpus
from .dedup import dedup_exact, dedup_semantic
from .embed import CachedEmbedder
from .inputs import load_corpus
from .registry import BUILTIN_STEPS, build_steps
from .report import write_report
from .scores import filter_scores
from .similarity import Pairs, nearest_similarity, similar_pairs
from .split import prevent_leakage, split_by_domain
from .steps import CurationAnalysis, Step, StepContext, StepResult, best_first, quality, record_stage, reject, run_steps
from .usable import blocking_reasons

__all__ = ["balance_domains", "apply_checks", "check_record", "detect_template_collapse", "curate", "curate_corpus",
           "dedup_exact", "dedup_semantic", "CachedEmbedder", "load_corpus", "BUILTIN_STEPS", "build_steps",
           "CurationAnalysis", "write_report", "filter_scores", "Pairs", "nearest_similarity", "similar_pairs",
           "prevent_leakage", "split_by_domain", "Step", "StepContext", "StepResult", "best_first", "quality",
           "record_stage", "reject", "run_steps", "blocking_reasons"]
