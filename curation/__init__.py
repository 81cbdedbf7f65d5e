"""Curation: small steps over records, each returning what it kept, what it set aside and why.

The order the data flows: inputs -> embed -> dedup (exact, semantic) -> collapse (template responses) ->
checks (refusal markers, contact details) -> scores (judge thresholds) -> balance -> split (no leakage) -> report;
then review (Argilla) -> publish (dataset card, Hub).
"""

from .agreement import Agreement, aggregate, cohen_kappa, krippendorff_alpha
from .balance import balance_domains
from .card import CardInputs, card_metadata, render_card
from .checks import apply_checks, check_record, extract_contacts, refusal_markers
from .collapse import detect_template_collapse
from .curate import curate, curate_corpus
from .dedup import dedup_exact, dedup_semantic
from .embed import CachedEmbedder
from .inputs import load_corpus
from .publish import (PublishBlocked, PublishConfig, PublishResult, blocking_reasons, build_publish_folder,
                      load_publish_config, publish_run, push_folder)
from .report import CurationAnalysis, write_report
from .review import (ArgillaQueue, ReviewConfig, agreement_figures, load_review_config, merge_reviews,
                     pull_review, push_review, review_status, select_records)
from .scores import filter_scores
from .similarity import Pairs, nearest_similarity, similar_pairs
from .split import prevent_leakage, split_by_domain
from .steps import StepResult, best_first, quality, reject

__all__ = ["Agreement", "aggregate", "cohen_kappa", "krippendorff_alpha", "ArgillaQueue", "ReviewConfig",
           "agreement_figures", "load_review_config", "merge_reviews", "pull_review", "push_review", "review_status",
           "select_records", "balance_domains", "apply_checks", "check_record", "extract_contacts", "refusal_markers",
           "detect_template_collapse", "curate", "curate_corpus", "dedup_exact", "dedup_semantic", "CachedEmbedder",
           "load_corpus", "CurationAnalysis", "write_report", "filter_scores", "Pairs", "nearest_similarity",
           "similar_pairs", "prevent_leakage", "split_by_domain", "StepResult", "best_first", "quality", "reject",
           "CardInputs", "card_metadata", "render_card", "PublishBlocked", "PublishConfig", "PublishResult",
           "blocking_reasons", "build_publish_folder", "load_publish_config", "publish_run", "push_folder"]
