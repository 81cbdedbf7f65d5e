"""Curation: small steps over records, each returning what it kept, what it set aside and why.

The order the data flows: inputs -> embed -> dedup (exact, semantic) -> collapse (template responses) ->
checks (refusal markers, contact details) -> scores (judge thresholds) -> balance -> split (no leakage) -> report.
Review (`psychosafe.curation.review`) and publish (`psychosafe.curation.publish`) build on it, in packages of their
own.
"""

from .balance import balance_domains
from .checks import apply_checks, check_record
from .collapse import detect_template_collapse
from .curate import curate, curate_corpus
from .dedup import dedup_exact, dedup_semantic
from .embed import CachedEmbedder
from .inputs import load_corpus
from .report import CurationAnalysis, write_report
from .scores import filter_scores
from .similarity import Pairs, nearest_similarity, similar_pairs
from .split import prevent_leakage, split_by_domain
from .steps import StepResult, best_first, quality, reject
from .usable import blocking_reasons

__all__ = ["balance_domains", "apply_checks", "check_record", "detect_template_collapse", "curate", "curate_corpus",
           "dedup_exact", "dedup_semantic", "CachedEmbedder", "load_corpus", "CurationAnalysis", "write_report",
           "filter_scores", "Pairs", "nearest_similarity", "similar_pairs", "prevent_leakage", "split_by_domain",
           "StepResult", "best_first", "quality", "reject", "blocking_reasons"]
